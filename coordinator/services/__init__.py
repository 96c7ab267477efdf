"""gRPC servicers: translate messages to node calls and grid errors to status codes."""
