"""``CheckConstraint`` across Django versions (``check=`` became ``condition=`` in 5.1)."""

from __future__ import annotations

import django
from django.db import models


def check_constraint(condition: models.Q, name: str) -> models.CheckConstraint:
    """A check constraint built with the keyword this Django version accepts."""
    if django.VERSION >= (5, 1):
        return models.CheckConstraint(condition=condition, name=name)
    return models.CheckConstraint(check=condition, name=name)
