package httpapi

// registerObservability registers the operations on health summaries, the dashboard, events and metrics.
func registerObservability(add adder, h *handlers) {}
