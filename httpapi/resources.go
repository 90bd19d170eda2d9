package httpapi

// registerResources registers the operations on storage locations, backup jobs, sync jobs and executions.
func registerResources(add adder, h *handlers) {}
