"""Source formats of the Spotify domain: Web API objects, streaming history, the MPD."""
