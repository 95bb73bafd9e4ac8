package main

import (
	"errors"
	"testing"
)

// TestPortscanCheck checks that portscanCheck accepts examples/portscan.js's
// output and rejects a scan summary that is missing, not last, or does not
// add up.
func TestPortscanCheck(t *testing.T) {
	const ports = `{"host":"h","port":1,"status":"open","rttMs":0.1}
{"host":"h","port":2,"status":"closed","rttMs":0.1}
{"host":"h","port":3,"status":"filtered","rttMs":null,"error":"i/o timeout"}
{"host":"h","open":[1],"closed":1,"filtered":1,"errors":0}
`
	const scan = `{"HostsScanned":1,"TotalHosts":1,"OpenPorts":1,"ClosedPorts":1,"FilteredPorts":1,"Errors":0}
`
	if got, err := portscanCheck(3)([]byte(ports + scan)); err != nil || got != portSet([]int{1}) {
		t.Errorf("portscanCheck = %q, %v; want %q", got, err, portSet([]int{1}))
	}
	for name, out := range map[string]string{
		"no summary":     ports,
		"summary first":  scan + ports,
		"does not add":   ports + `{"HostsScanned":1,"TotalHosts":1,"OpenPorts":1,"ClosedPorts":2,"FilteredPorts":1,"Errors":0}` + "\n",
		"wrong open":     ports + `{"HostsScanned":1,"TotalHosts":1,"OpenPorts":0,"ClosedPorts":2,"FilteredPorts":1,"Errors":0}` + "\n",
		"a port missing": ports[len(`{"host":"h","port":1,"status":"open","rttMs":0.1}`)+1:] + scan,
	} {
		if _, err := portscanCheck(3)([]byte(out)); !errors.Is(err, errWrongOutput) {
			t.Errorf("%s: err = %v; want errWrongOutput", name, err)
		}
	}
}
