package web

// Observer receives the page's events for metrics; metrics.Metrics
// implements it. Methods must be safe for concurrent use.
type Observer interface {
	// WebSignIn gets ok, enrolled, denied, invalid or error.
	WebSignIn(result string)
	// WebDeviceOp gets op create, revoke, admin_revoke or
	// admin_remove_user, and result ok, failed or forbidden.
	WebDeviceOp(op, result string)
	// WebCSRFRejected counts refused form posts.
	WebCSRFRejected()
}

type nopObserver struct{}

func (nopObserver) WebSignIn(string)           {}
func (nopObserver) WebDeviceOp(string, string) {}
func (nopObserver) WebCSRFRejected()           {}
