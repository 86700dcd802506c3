"""The web dashboard: server-rendered pages over the same core as the API, assets shipped here."""
