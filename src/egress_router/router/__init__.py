"""The router pod's applier: observes the pod's network, executes core plans through adapters."""
