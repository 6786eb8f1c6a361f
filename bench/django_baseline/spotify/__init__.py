"""The Spotify tables as a Django app (bench only): the tenant app of both Django variants."""
