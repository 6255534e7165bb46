package alert

import (
	"fmt"
	"strings"

	"github.com/sonde-monitoring/sonde/internal/model"
)

// Severity is how bad an alert is. The names and their order are
// InfraSonar's (those of syslog): EMERGENCY is the worst, 0.
type Severity int

// The alert severities, worst first.
const (
	Emergency Severity = iota
	Alert
	Critical
	Error
	Warning
	Notice
	Info
	Debug
)

var severityNames = [...]string{"EMERGENCY", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"}

// String names the severity.
func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return fmt.Sprintf("Severity(%d)", int(s))
	}
	return severityNames[s]
}

// ParseSeverity reads an alert severity name, in any case.
func ParseSeverity(s string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(s, n) {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("severity %q is not one of %s", s, strings.Join(severityNames[:], ", "))
}

// Notification kinds: what went wrong with the monitoring itself.
const (
	KindCheckMissing          = "check_missing"
	KindAgentSilent           = "agent_silent"
	KindCheckError            = "check_error"
	KindApplianceDisconnected = "appliance_disconnected"
	KindBufferDropping        = "buffer_dropping"
	KindProbeMissing          = "probe_missing"
	KindInvalidData           = "invalid_data"
	KindConditionError        = "condition_error"
	KindEvaluationLimit       = "evaluation_limit"
)

// notificationSeverity names a notification severity (model.Severity:
// HIGH, MEDIUM, LOW).
func notificationSeverity(n int) string { return model.Severity(n).String() }
