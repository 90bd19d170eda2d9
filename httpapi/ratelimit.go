package httpapi

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Defaults of the failed-authentication limit (Options.AuthFailureLimit and
// Options.AuthFailureWindow).
const (
	DefaultAuthFailureLimit  = 20
	DefaultAuthFailureWindow = time.Minute
)

// maxAuthClients bounds how many client addresses an AuthLimiter tracks.
const maxAuthClients = 10_000

// AuthLimiter refuses clients that failed authentication too often: after
// limit failures within a window, every request from the client's address
// is refused until a window has passed since the last counted failure
// (valid token or not: otherwise the limiter would tell a guesser when it
// has found a token). Its memory is bounded: it tracks at most 10,000
// addresses and forgets those whose window has passed.
//
// New puts one in front of Options.Auth. A service that authenticates
// requests in its own middleware (calling Register on its own huma API)
// uses one the same way:
//
//	l := httpapi.NewAuthLimiter(opts)
//	if wait, blocked := l.Blocked(r); blocked { /* 429, Retry-After: wait */ }
//	if err := authenticate(r); err != nil { l.Failed(r); /* 401 */ }
//
// A nil *AuthLimiter (the limit is turned off) blocks nothing. Its
// methods may be called concurrently.
type AuthLimiter struct {
	limit  int
	window time.Duration
	addr   func(*http.Request) string
	now    func() time.Time // tests replace it
	max    int              // tests lower it

	mu        sync.Mutex
	clients   map[string]*authFailures
	nextPrune time.Time
}

// authFailures are one client address's failures in its current window.
type authFailures struct {
	n            int
	until        time.Time // the window ends (a block lasts until then)
	blockedUntil time.Time // zero unless the limit was reached
}

// NewAuthLimiter returns the limiter opts configure (AuthFailureLimit,
// AuthFailureWindow, ClientAddr), or nil when a negative limit or window
// turns it off.
func NewAuthLimiter(opts *Options) *AuthLimiter {
	o := opts.withDefaults()
	if o.AuthFailureLimit < 0 || o.AuthFailureWindow < 0 {
		return nil
	}
	return &AuthLimiter{limit: o.AuthFailureLimit, window: o.AuthFailureWindow, addr: o.ClientAddr,
		now: time.Now, max: maxAuthClients, clients: map[string]*authFailures{}}
}

// Blocked reports whether r's client reached the limit, and how long it
// must wait.
func (l *AuthLimiter) Blocked(r *http.Request) (time.Duration, bool) {
	if l == nil {
		return 0, false
	}
	key := l.addr(r)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.clients[key]
	if !ok || c.blockedUntil.IsZero() {
		return 0, false
	}
	if !now.Before(c.blockedUntil) {
		delete(l.clients, key)
		return 0, false
	}
	return c.blockedUntil.Sub(now), true
}

// Failed counts a failed authentication of r's client. The failure that
// reaches the limit blocks the client for a whole window.
func (l *AuthLimiter) Failed(r *http.Request) {
	if l == nil {
		return
	}
	key := l.addr(r)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.After(l.nextPrune) || len(l.clients) >= l.max {
		l.prune(now)
	}
	c, ok := l.clients[key]
	if ok && !now.Before(c.until) {
		ok = false // its window has passed: start a new one
	}
	if !ok {
		if _, tracked := l.clients[key]; !tracked && len(l.clients) >= l.max {
			l.evictOne()
		}
		c = &authFailures{until: now.Add(l.window)}
		l.clients[key] = c
	}
	if !c.blockedUntil.IsZero() {
		return // blocked: the block does not grow
	}
	c.n++
	if c.n >= l.limit {
		c.blockedUntil = now.Add(l.window)
		c.until = c.blockedUntil
	}
}

// prune forgets the clients whose window has passed.
func (l *AuthLimiter) prune(now time.Time) {
	for k, c := range l.clients {
		if !now.Before(c.until) {
			delete(l.clients, k)
		}
	}
	l.nextPrune = now.Add(l.window)
}

// evictOne makes room when max clients are tracked within their window:
// it forgets a client that is not blocked, or any client if all are
// (whoever controls that many addresses is not slowed down by the limit).
func (l *AuthLimiter) evictOne() {
	victim := ""
	for k, c := range l.clients {
		victim = k
		if c.blockedUntil.IsZero() {
			break
		}
	}
	delete(l.clients, victim)
}

// retryAfter is the Retry-After value (whole seconds, at least 1) of wait.
func retryAfter(wait time.Duration) string {
	return fmt.Sprint(max(1, int64(math.Ceil(wait.Seconds()))))
}

// clientAddr is the default Options.ClientAddr: the host of r.RemoteAddr,
// an IPv6 address as its /64 (one host usually holds a whole /64), an
// IPv4-mapped IPv6 address as the IPv4 address. Headers such as
// X-Forwarded-For are not trusted: any client can send them.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}
