"""Stores: what rests on disk under GRACE_HOME. The sealed blob store, the LanceDB chunk index
and the private file permissions they share."""
