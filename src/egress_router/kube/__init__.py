"""The Kubernetes API adapter (issue 10): the only package that imports the client library."""
