"""What the tests (and the benchmarks) share.

servers: real server processes; postgres and pgcluster: databases and clusters of their own;
uploads: manifests sent to the app; manifests and scan_cache: test data; integrity: the
database's own consistency checks; ci: skip, or fail under CI=true; answers: answers as the
service sends them, for clients talking to a stand-in.

oracle is the brute-force answer in plain Python that the service's answers are compared with:
it imports nothing of the service, so a fault in the code under test cannot hide in it.
"""
