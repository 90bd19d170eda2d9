// Package drivertest is the conformance suite every drivers.Driver runs,
// in one line from its own tests:
//
//	func TestConformance(t *testing.T) {
//		drivertest.Run(t, drivertest.Harness{Driver: mydriver.New(), ...})
//	}
//
// Run drives the driver through the real backup pipeline (manifest.Write
// and manifest.Read over storage/local in temporary directories): round
// trips with every compression and with many parts, restores of corrupt,
// truncated and incomplete backups that must be refused before the target
// is touched, cancelled dumps that must leave no backup behind, cancelled
// restores, restores over an existing target, and Ping; first of all it
// checks that the harness's Equal notices what Mutate changes. It is public
// so that drivers written outside this module can prove the same contract.
//
// The optional capabilities have suites of their own: RunVerifier
// (drivers.Verifier), RunInspector (drivers.Inspector), and, for network
// drivers, RunPingFailures and RunConnectTimeouts (a server that accepts
// connections and never answers).
package drivertest
