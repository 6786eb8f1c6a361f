"""django-tenants' tenant and domain models (bench only): the shared app of that variant."""
