"""The ingest agent on a collection workstation: notices a docked recorder, pulls and fingerprints
its files in one pass, keeps a durable local journal, uploads over the station API, and wipes the
device only after the server's signed receipt."""
