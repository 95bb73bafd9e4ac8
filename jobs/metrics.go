package jobs

import (
	"fmt"
	"io"
	"strings"
)

// MetricsPath is where Handler serves the jobs' counts as Prometheus text
// (exposition format 0.0.4), for a scraper or `curl --unix-socket`.
const MetricsPath = "/metrics"

// WriteMetrics writes list as Prometheus text: the number of jobs in each
// state, and for every job its items done, failed, running, waiting for a
// runspace and retried — the numbers `rsh job ls` and `rsh job get` show.
// With a batch size these count batches, as Info does. Nothing is kept
// between calls: each scrape costs one List.
func WriteMetrics(w io.Writer, list []Info) error {
	var b strings.Builder
	byState := map[State]int{}
	for _, i := range list {
		byState[i.State]++
	}
	b.WriteString("# HELP rsh_jobs Jobs by state.\n# TYPE rsh_jobs gauge\n")
	for _, st := range allStates() {
		fmt.Fprintf(&b, "rsh_jobs{state=%q} %d\n", st, byState[st])
	}
	per := []struct {
		name, kind, help string
		value            func(Info) int64
	}{
		{"rsh_job_items_done", "counter", "Items of the job that have a result.", func(i Info) int64 { return int64(i.Done) }},
		{"rsh_job_items_failed", "counter", "Items of the job whose result is not Success.", func(i Info) int64 { return int64(i.Failed) }},
		{"rsh_job_items_running", "gauge", "Items of the job running now.", func(i Info) int64 { return int64(i.Running) }},
		{"rsh_job_items_queued", "gauge", "Items of the job read and waiting for a runspace.", func(i Info) int64 { return int64(i.Queued) }},
		{"rsh_job_items_retried", "counter", "Retry attempts made by the job's process.", func(i Info) int64 { return i.Retried }},
	}
	for _, m := range per {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", m.name, m.help, m.name, m.kind)
		for _, i := range list {
			fmt.Fprintf(&b, "%s{job=\"%s\",state=%q} %d\n", m.name, labelValue(i.Name), i.State, m.value(i))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// labelValue escapes a label value as the text format wants: backslash,
// double quote and newline. (Job names cannot hold them, but a damaged
// job's name comes from its directory.)
func labelValue(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}
