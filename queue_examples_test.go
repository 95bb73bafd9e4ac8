package main

// The work-queue examples, examples/k8s/queue-workers.yaml and
// examples/slurm/rsh-queue-workers.sh, checked the way they would be
// used: the manifest is parsed and its put and worker commands run, the
// Slurm script run as each task of its array, all against an embedded
// NATS server that wants a token; between them the workers must give
// every item exactly one result. Like the sharding examples, the rsh they
// run is this test binary.

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v3"

	"github.com/runspaces/rsh/queue"
)

// exampleToken is the token the tests' NATS server wants, made as the
// examples say (openssl rand -hex 32, shortened); it must never appear
// in anything rsh prints.
const exampleToken = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// testIdleExit replaces the examples' --idle-exit: long enough for a
// worker started with items waiting to take some, short enough for a
// quick test.
const testIdleExit = "2s"

// k8sService is what the test reads of a Kubernetes Service.
type k8sService struct {
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		ClusterIP string            `yaml:"clusterIP"`
		Selector  map[string]string `yaml:"selector"`
		Ports     []struct {
			Port       int `yaml:"port"`
			TargetPort int `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

// flagValue is the value of flag (--name VALUE or --name=VALUE) in argv,
// which must give it once.
func flagValue(t *testing.T, argv []string, flag string) string {
	t.Helper()
	var values []string
	for i, a := range argv {
		if a == flag && i+1 < len(argv) {
			values = append(values, argv[i+1])
		} else if v, ok := strings.CutPrefix(a, flag+"="); ok {
			values = append(values, v)
		}
	}
	if len(values) != 1 {
		t.Fatalf("the command %q gives %s %d times, want once", argv, flag, len(values))
	}
	return values[0]
}

// setFlag sets the value of flag in argv (given as --name VALUE).
func setFlag(t *testing.T, argv []string, flag, value string) {
	t.Helper()
	i := slices.Index(argv, flag)
	if i < 0 || i+1 >= len(argv) {
		t.Fatalf("the command %q does not give %s VALUE", argv, flag)
	}
	argv[i+1] = value
}

// tokenSafe fails the test if out shows the token.
func tokenSafe(t *testing.T, what string, out []byte) {
	t.Helper()
	if strings.Contains(string(out), exampleToken) {
		t.Errorf("%s printed the token:\n%s", what, out)
	}
}

// serveWithToken starts an embedded NATS server with JetStream that
// wants exampleToken.
func serveWithToken(t *testing.T) *queue.Server {
	t.Helper()
	srv, err := queue.Serve(queue.ServeOptions{StoreDir: t.TempDir(), Host: "127.0.0.1", Port: -1, Token: exampleToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// runWorkers runs n copies of a worker command at once and waits for
// all: each must end by itself (--idle-exit) with exit code 0.
func runWorkers(t *testing.T, n int, command func(i int) *exec.Cmd) {
	t.Helper()
	var wg sync.WaitGroup
	outs := make([][]byte, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			outs[i], errs[i] = command(i).CombinedOutput()
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("worker %d: %v\n%s", i, errs[i], outs[i])
		}
		tokenSafe(t, fmt.Sprintf("worker %d", i), outs[i])
	}
}

// getResults writes the records stored at results (a URL) to a file in
// dir and returns its name.
func getResults(t *testing.T, dir, results, tokenFile string) string {
	t.Helper()
	cmd := exec.Command("rsh", "queue", "get", results, "--out", "records", "--nats-token-file", tokenFile)
	cmd.Env = cleanEnv(t)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rsh queue get: %v\n%s", err, stderr.String())
	}
	tokenSafe(t, "rsh queue get", []byte(stderr.String()))
	file := filepath.Join(dir, "results.jsonl")
	if err := os.WriteFile(file, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// The Kubernetes work-queue example: a single-node NATS server (Service,
// StatefulSet, its config in a ConfigMap) whose token comes from a
// Secret the manifest does not hold; a put Job; a Job of workers running
// rsh run --from --to --idle-exit, the token file mounted from the same
// Secret and no secret on any command line or in any literal variable.
// The server's config is checked by NATS's own parser; the put and the
// workers are run as Kubernetes would run their pods, against an
// embedded server that wants the token, and every item gets one result.
func TestK8sQueueWorkersExample(t *testing.T) {
	data, err := os.ReadFile("examples/k8s/queue-workers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	configMaps := map[string]map[string]string{}
	var jobs, statefulSets []k8sObject
	var services []k8sService
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		var head struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		}
		if err := doc.Decode(&head); err != nil {
			t.Fatal(err)
		}
		switch head.Kind {
		case "Service":
			var s k8sService
			if err := doc.Decode(&s); err != nil {
				t.Fatal(err)
			}
			services = append(services, s)
		case "ConfigMap", "Job", "StatefulSet":
			var o k8sObject
			if err := doc.Decode(&o); err != nil {
				t.Fatal(err)
			}
			switch o.Kind {
			case "ConfigMap":
				configMaps[o.Metadata.Name] = o.Data
			case "Job":
				jobs = append(jobs, o)
			case "StatefulSet":
				statefulSets = append(statefulSets, o)
			}
		case "Secret":
			t.Errorf("Secret %s is in the manifest: a token in a file people commit", head.Metadata.Name)
		default:
			t.Errorf("unexpected %s %s", head.Kind, head.Metadata.Name)
		}
	}

	// Every container: no credentials on a command line, none in a
	// variable's literal value.
	secretish := regexp.MustCompile(`(?i)token|pass|secret|creds|nkey`)
	for _, o := range slices.Concat(jobs, statefulSets) {
		for _, c := range o.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if secretish.MatchString(e.Name) && (e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
					t.Errorf("%s %s: variable %s is not taken from a Secret", o.Kind, o.Metadata.Name, e.Name)
				}
			}
			for _, a := range slices.Concat(c.Command, c.Args) {
				if u, err := url.Parse(a); err == nil && u.User != nil {
					t.Errorf("%s %s: %s has credentials in it, which the process list shows", o.Kind, o.Metadata.Name, a)
				}
				if a == "--auth" || a == "--pass" || a == "--user" {
					t.Errorf("%s %s: %s puts a secret on the command line", o.Kind, o.Metadata.Name, a)
				}
			}
		}
	}

	// The jobs: one puts, one runs the workers.
	var put, workers *k8sObject
	for i, j := range jobs {
		if j.APIVersion != "batch/v1" || len(j.Spec.Template.Spec.Containers) != 1 {
			t.Fatalf("Job %s: want batch/v1 with one container", j.Metadata.Name)
		}
		argv := slices.Concat(j.Spec.Template.Spec.Containers[0].Command, j.Spec.Template.Spec.Containers[0].Args)
		switch {
		case len(argv) > 3 && argv[0] == "rsh" && argv[1] == "queue" && argv[2] == "put":
			put = &jobs[i]
		case len(argv) > 2 && argv[0] == "rsh" && argv[1] == "run":
			workers = &jobs[i]
		default:
			t.Fatalf("Job %s runs %q, neither rsh queue put nor rsh run", j.Metadata.Name, argv)
		}
		if rp := j.Spec.Template.Spec.RestartPolicy; rp != "Never" && rp != "OnFailure" {
			t.Errorf("Job %s: restartPolicy %q: a Job's pods need Never or OnFailure", j.Metadata.Name, rp)
		}
	}
	if put == nil || workers == nil || len(jobs) != 2 {
		t.Fatalf("want a Job that puts the items and a Job of workers, got %d Jobs", len(jobs))
	}
	spec := workers.Spec
	if spec.Parallelism == nil || *spec.Parallelism < 2 {
		t.Fatalf("Job %s: parallelism %v: want several workers", workers.Metadata.Name, spec.Parallelism)
	}
	if spec.Completions != nil && *spec.Completions != *spec.Parallelism {
		t.Errorf("Job %s: completions %d, parallelism %d: every worker runs until the queue is dry, so want completions unset (a work-queue Job) or equal", workers.Metadata.Name, *spec.Completions, *spec.Parallelism)
	}
	wc := workers.Spec.Template.Spec.Containers[0]
	warg := slices.Concat(wc.Command, wc.Args)
	from, to := flagValue(t, warg, "--from"), flagValue(t, warg, "--to")
	idle := flagValue(t, warg, "--idle-exit")
	if d, err := time.ParseDuration(idle); err != nil || d <= 0 {
		t.Errorf("--idle-exit %s: want a duration, so that workers end once the queue is dry", idle)
	}
	pc := put.Spec.Template.Spec.Containers[0]
	parg := slices.Concat(pc.Command, pc.Args)
	if parg[3] != from {
		t.Errorf("the put enqueues on %s, the workers take from %s", parg[3], from)
	}
	fromURL, err := url.Parse(from)
	if err != nil {
		t.Fatal(err)
	}
	// rsh queue stat counts what is done in NAME_RESULTS unless told.
	if to != from+"_RESULTS" {
		t.Fatalf("--from %s --to %s: want --to %s_RESULTS, where rsh queue stat looks", from, to, from)
	}

	// The token file: in a read-only volume of a Secret, the one whose
	// key the server takes its token from.
	tokenSource := func(name string, c k8sContainer, vols []k8sVolume) string {
		file := flagValue(t, slices.Concat(c.Command, c.Args), "--nats-token-file")
		for _, m := range c.VolumeMounts {
			rel, ok := strings.CutPrefix(file, m.MountPath+"/")
			if !ok {
				continue
			}
			i := slices.IndexFunc(vols, func(v k8sVolume) bool { return v.Name == m.Name })
			if i < 0 || vols[i].Secret == nil {
				t.Fatalf("%s: --nats-token-file %s is not in a Secret's volume", name, file)
			}
			if !m.ReadOnly {
				t.Errorf("%s: the Secret's volume at %s is not mounted readOnly", name, m.MountPath)
			}
			key := rel
			if items := vols[i].Secret.Items; len(items) > 0 {
				j := slices.IndexFunc(items, func(it k8sKey) bool { return it.Path == rel })
				if j < 0 {
					t.Fatalf("%s: --nats-token-file %s is none of the Secret's items", name, file)
				}
				key = items[j].Key
			}
			return vols[i].Secret.SecretName + "/" + key
		}
		t.Fatalf("%s: --nats-token-file %s is outside the mounted volumes", name, file)
		return ""
	}
	workerToken := tokenSource("the workers", wc, workers.Spec.Template.Spec.Volumes)
	if pt := tokenSource("the put", pc, put.Spec.Template.Spec.Volumes); pt != workerToken {
		t.Errorf("the put's token is %s, the workers' %s", pt, workerToken)
	}
	secretName, secretKey, _ := strings.Cut(workerToken, "/")
	secrets := map[string]map[string]string{secretName: {secretKey: exampleToken + "\n"}}

	// The NATS server the URLs name: a Service of that name and port,
	// selecting the pods of a StatefulSet whose config, read by NATS
	// itself, enables JetStream, keeps it on the set's volume, listens
	// on that port and wants the workers' token.
	host, port := fromURL.Hostname(), fromURL.Port()
	si := slices.IndexFunc(services, func(s k8sService) bool { return s.Metadata.Name == host })
	if si < 0 || len(statefulSets) != 1 {
		t.Fatalf("want a Service %s and the StatefulSet of its NATS server: %d Services, %d StatefulSets", host, len(services), len(statefulSets))
	}
	svc, nats := services[si], statefulSets[0]
	if len(svc.Spec.Ports) != 1 || strconv.Itoa(svc.Spec.Ports[0].Port) != port {
		t.Fatalf("Service %s: ports %v, want the URLs' %s", host, svc.Spec.Ports, port)
	}
	if nats.APIVersion != "apps/v1" || nats.Spec.ServiceName != host || nats.Spec.Selector == nil {
		t.Errorf("StatefulSet %s: %s, serviceName %q: want apps/v1 with serviceName %s", nats.Metadata.Name, nats.APIVersion, nats.Spec.ServiceName, host)
	}
	for k, v := range svc.Spec.Selector {
		if nats.Spec.Template.Metadata.Labels[k] != v || nats.Spec.Selector.MatchLabels[k] != v {
			t.Errorf("Service %s selects %s=%s, which the StatefulSet's pods are not", host, k, v)
		}
	}
	if len(svc.Spec.Selector) == 0 {
		t.Errorf("Service %s selects nothing", host)
	}
	npod := nats.Spec.Template.Spec
	if len(npod.Containers) != 1 || !strings.HasPrefix(npod.Containers[0].Image, "nats:") {
		t.Fatalf("StatefulSet %s: want one container of the nats image", nats.Metadata.Name)
	}
	nc := npod.Containers[0]
	nroot := t.TempDir()
	nvols := slices.Clone(npod.Volumes)
	for _, c := range nats.Spec.VolumeClaimTemplates {
		nvols = append(nvols, k8sVolume{Name: c.Metadata.Name, EmptyDir: &struct{}{}})
	}
	nvolumes := podVolumes(t, nroot, nvols, configMaps, secrets, nil)
	nargv := mountedArgv(t, slices.Concat([]string{"nats-server"}, nc.Command, nc.Args), nc.VolumeMounts, nvolumes)
	for _, e := range nc.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name+"/"+ref.Key != workerToken {
				t.Errorf("the server's %s is %s/%s, the workers' token %s", e.Name, ref.Name, ref.Key, workerToken)
			}
			t.Setenv(e.Name, exampleToken)
		}
	}
	opts, err := server.ProcessConfigFile(flagValue(t, nargv, "--config"))
	if err != nil {
		t.Fatalf("the NATS config: %v", err)
	}
	if !opts.JetStream || strconv.Itoa(opts.Port) != port || opts.Authorization != exampleToken {
		t.Errorf("the NATS config: JetStream %v, port %d, token set %v: want JetStream, port %s, the workers' token", opts.JetStream, opts.Port, opts.Authorization == exampleToken, port)
	}
	if svc.Spec.Ports[0].TargetPort != 0 && svc.Spec.Ports[0].TargetPort != opts.Port {
		t.Errorf("Service %s sends to port %d, the server listens on %d", host, svc.Spec.Ports[0].TargetPort, opts.Port)
	}
	claimed := map[string]bool{}
	for _, c := range nats.Spec.VolumeClaimTemplates {
		claimed[c.Metadata.Name] = true
	}
	if !slices.ContainsFunc(nc.VolumeMounts, func(m k8sMount) bool {
		return claimed[m.Name] && strings.HasPrefix(opts.StoreDir+"/", m.MountPath+"/")
	}) {
		t.Errorf("the NATS store %s is not on a volume of the StatefulSet's own: the queue would not outlive the pod", opts.StoreDir)
	}

	// Run them: the put once, then the workers all at once, against an
	// embedded server that wants the token, with the URLs' host and port
	// its own.
	srv := serveWithToken(t)
	inCluster := "nats://" + fromURL.Host
	pod := func(job *k8sObject) (argv []string, root string) {
		root = t.TempDir()
		ps := job.Spec.Template.Spec
		volumes := podVolumes(t, root, ps.Volumes, configMaps, secrets, nil)
		argv = mountedArgv(t, slices.Concat(ps.Containers[0].Command, ps.Containers[0].Args), ps.Containers[0].VolumeMounts, volumes)
		for i, a := range argv {
			argv[i] = strings.Replace(a, inCluster, srv.URL(), 1)
		}
		return argv, root
	}
	podEnv := func(c k8sContainer) []string {
		var env []string
		for _, e := range c.Env {
			env = append(env, e.Name+"="+e.Value)
		}
		return cleanEnv(t, env...)
	}
	pargv, proot := pod(put)
	cmd := exec.Command(pargv[0], pargv[1:]...)
	cmd.Env, cmd.Dir = podEnv(pc), proot
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the put: %v\n%s", err, out)
	}
	tokenSafe(t, "the put", out)
	runWorkers(t, *spec.Parallelism, func(int) *exec.Cmd {
		argv, root := pod(workers)
		setFlag(t, argv, "--idle-exit", testIdleExit)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env, cmd.Dir = podEnv(wc), root
		return cmd
	})
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(exampleToken), 0o600); err != nil {
		t.Fatal(err)
	}
	results := getResults(t, dir, strings.Replace(to, inCluster, srv.URL(), 1), tokenFile)
	checkShardResults(t, nonEmptyLines(configMaps["rsh-queue"]["items.txt"]), []string{results})
}

// The Slurm work-queue script: its tasks, as many as its --array, run
// rsh run --from "$QUEUE/JOB" --to "$QUEUE/JOB_RESULTS" --idle-exit with
// the token file from $QUEUE_TOKEN_FILE; run at once with Slurm's
// variables against an embedded server that wants a token, after the put
// the script's comment shows, they give every item one result. Without
// QUEUE the script says what is missing.
func TestSlurmQueueWorkersExample(t *testing.T) {
	_, data := readExample(t, "examples/slurm/rsh-queue-workers.sh")
	tasks, step := sbatchArray(t, data)
	m := regexp.MustCompile(`rsh run "\$script" --from "\$QUEUE/(\w+)" --to "\$QUEUE/(\w+)"`).FindStringSubmatch(string(data))
	if m == nil {
		t.Fatal(`the script does not run rsh run "$script" --from "$QUEUE/NAME" --to "$QUEUE/NAME"`)
	}
	job, results := m[1], m[2]
	if results != job+"_RESULTS" {
		t.Errorf("--from $QUEUE/%s --to $QUEUE/%s: want %s_RESULTS, where rsh queue stat looks", job, results, job)
	}
	if !strings.Contains(string(data), `${QUEUE_TOKEN_FILE:+--nats-token-file "$QUEUE_TOKEN_FILE"}`) {
		t.Error("the script does not pass $QUEUE_TOKEN_FILE as --nats-token-file")
	}
	idle := regexp.MustCompile(`--idle-exit \d+[a-z]+\b`)
	if n := len(idle.FindAllString(string(data), -1)); n != 1 {
		t.Fatalf("the script gives --idle-exit D %d times, want once", n)
	}
	dir := t.TempDir()
	quick := filepath.Join(dir, "rsh-queue-workers.sh")
	if err := os.WriteFile(quick, idle.ReplaceAll(data, []byte("--idle-exit "+testIdleExit)), 0o755); err != nil {
		t.Fatal(err)
	}

	var b strings.Builder
	var items []string
	for n := 1; n <= 40; n++ {
		items = append(items, strconv.Itoa(n))
		b.WriteString(strconv.Itoa(n) + "\n")
	}
	for name, content := range map[string]string{
		"items.txt": b.String(),
		"job.js":    "module.exports = (n) => n * n;\n",
		"token":     exampleToken + "\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tokenFile := filepath.Join(dir, "token")

	// Without QUEUE, the script stops before rsh and says why.
	cmd := exec.Command("sh", quick, "job.js")
	cmd.Env, cmd.Dir = cleanEnv(t, "SLURM_ARRAY_TASK_ID=0"), dir
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "QUEUE") {
		t.Errorf("the script without QUEUE: %v\n%s", err, out)
	}

	srv := serveWithToken(t)
	cmd = exec.Command("rsh", "queue", "put", srv.URL()+"/"+job, "items.txt", "--nats-token-file", tokenFile)
	cmd.Env, cmd.Dir = cleanEnv(t), dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rsh queue put: %v\n%s", err, out)
	}
	runWorkers(t, len(tasks), func(i int) *exec.Cmd {
		cmd := exec.Command("sh", quick, "job.js")
		cmd.Env = cleanEnv(t,
			"QUEUE="+srv.URL(), "QUEUE_TOKEN_FILE="+tokenFile,
			"SLURM_ARRAY_JOB_ID=1000", "SLURM_CPUS_PER_TASK=2",
			"SLURM_ARRAY_TASK_ID="+strconv.Itoa(tasks[i]),
			"SLURM_ARRAY_TASK_MIN="+strconv.Itoa(tasks[0]),
			"SLURM_ARRAY_TASK_MAX="+strconv.Itoa(tasks[len(tasks)-1]),
			"SLURM_ARRAY_TASK_STEP="+strconv.Itoa(step),
			"SLURM_ARRAY_TASK_COUNT="+strconv.Itoa(len(tasks)))
		cmd.Dir = dir
		return cmd
	})
	checkShardResults(t, items, []string{getResults(t, dir, srv.URL()+"/"+results, tokenFile)})
}
