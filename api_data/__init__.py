"""The Discovery document of taskqueue v1beta2 (``taskqueue.v1beta2.json``): what the
server serves to clients and builds its routes from (`bridge.taskqueue.discovery`)."""
