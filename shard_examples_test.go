package main

// The sharding examples, examples/k8s and examples/slurm, checked the way
// they would be used: the Kubernetes manifest is parsed and its container
// command run once per completion index, the Slurm script is run once per
// array task with Slurm's variables; between them the shards must give
// every item exactly one result. (The rsh they run is this test binary,
// which testscript.Main puts on $PATH under that name.)

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// k8sObject is what the tests read of a Kubernetes object: a ConfigMap,
// a PersistentVolumeClaim, a Job or a StatefulSet.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		CompletionMode string `yaml:"completionMode"`
		Completions    *int   `yaml:"completions"`
		Parallelism    *int   `yaml:"parallelism"`
		ServiceName    string `yaml:"serviceName"`
		Selector       *struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		VolumeClaimTemplates []struct {
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		} `yaml:"volumeClaimTemplates"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				RestartPolicy string         `yaml:"restartPolicy"`
				Containers    []k8sContainer `yaml:"containers"`
				Volumes       []k8sVolume    `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	VolumeMounts []k8sMount `yaml:"volumeMounts"`
}

type k8sMount struct {
	Name      string `yaml:"name"`
	MountPath string `yaml:"mountPath"`
	ReadOnly  bool   `yaml:"readOnly"`
}

// k8sKeys is a ConfigMap or Secret volume's choice of keys: each key
// Items names, at its path, or every key at its own name.
type k8sKeys []k8sKey

type k8sKey struct {
	Key  string `yaml:"key"`
	Path string `yaml:"path"`
}

type k8sVolume struct {
	Name      string `yaml:"name"`
	ConfigMap *struct {
		Name  string  `yaml:"name"`
		Items k8sKeys `yaml:"items"`
	} `yaml:"configMap"`
	Secret *struct {
		SecretName string  `yaml:"secretName"`
		Items      k8sKeys `yaml:"items"`
	} `yaml:"secret"`
	PersistentVolumeClaim *struct {
		ClaimName string `yaml:"claimName"`
	} `yaml:"persistentVolumeClaim"`
	EmptyDir *struct{} `yaml:"emptyDir"`
}

// cleanEnv is the environment for an example's command: $PATH (with rsh),
// a home, and vars; nothing of the test's own environment, which could
// pick a shard (a CI job under Slurm or GNU parallel).
func cleanEnv(t *testing.T, vars ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, vars...)
}

// shardRecord is what the test reads of a result record.
type shardRecord struct {
	Seq    int64             `json:"seq"`
	Input  json.RawMessage   `json:"input"`
	Output []json.RawMessage `json:"output"`
	Status string            `json:"status"`
}

// readRecords reads the records in file.
func readRecords(t *testing.T, file string) []shardRecord {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []shardRecord
	dec := json.NewDecoder(bufio.NewReader(f))
	for {
		var r shardRecord
		if err := dec.Decode(&r); errors.Is(err, io.EOF) {
			return recs
		} else if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		recs = append(recs, r)
	}
}

// checkShardResults checks that the result files of the shards hold
// exactly one successful record for each line of items (numbers), with
// its square as output and its line number as seq, and that every shard
// ran some of them.
func checkShardResults(t *testing.T, items []string, results []string) {
	t.Helper()
	seen := map[string]int{}
	for _, file := range results {
		recs := readRecords(t, file)
		if len(recs) == 0 {
			t.Errorf("%s: no records: this shard ran nothing", filepath.Base(file))
		}
		for _, r := range recs {
			in := string(r.Input)
			seen[in]++
			n, err := strconv.Atoi(in)
			if err != nil {
				t.Fatalf("%s: input %s is not one of the items", filepath.Base(file), in)
			}
			if r.Status != "Success" || len(r.Output) != 1 || string(r.Output[0]) != strconv.Itoa(n*n) {
				t.Errorf("%s: item %d: status %s, output %s", filepath.Base(file), n, r.Status, r.Output)
			}
			if r.Seq < 1 || r.Seq > int64(len(items)) || items[r.Seq-1] != in {
				t.Errorf("%s: item %s has seq %d, not its line number", filepath.Base(file), in, r.Seq)
			}
		}
	}
	for _, it := range items {
		if seen[it] != 1 {
			t.Errorf("item %s has %d results, want exactly 1", it, seen[it])
		}
		delete(seen, it)
	}
	for in, n := range seen {
		t.Errorf("%d results for %s, which is not an item", n, in)
	}
}

// nonEmptyLines returns the lines of s that are not blank.
func nonEmptyLines(s string) []string {
	var lines []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	return lines
}

// The Kubernetes Indexed Job: a Job of completionMode Indexed whose
// container runs rsh with --shard auto/N, N its completions, and one job
// log and result file per index; run as Kubernetes would run its pods
// (volumes made from the manifest, JOB_COMPLETION_INDEX set), the shards
// give every item one result.
func TestK8sIndexedJobExample(t *testing.T) {
	data, err := os.ReadFile("examples/k8s/indexed-job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var job *k8sObject
	configMaps := map[string]map[string]string{}
	claims := map[string]bool{}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	for {
		var o k8sObject
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		switch o.Kind {
		case "Job":
			if job != nil {
				t.Fatal("more than one Job")
			}
			job = &o
		case "ConfigMap":
			configMaps[o.Metadata.Name] = o.Data
		case "PersistentVolumeClaim":
			claims[o.Metadata.Name] = true
		default:
			t.Errorf("unexpected %s %s", o.Kind, o.Metadata.Name)
		}
	}
	if job == nil {
		t.Fatal("no Job")
	}
	spec := job.Spec
	if job.APIVersion != "batch/v1" || spec.CompletionMode != "Indexed" || spec.Completions == nil || *spec.Completions < 1 {
		t.Fatalf("not an Indexed Job with completions: %s, completionMode %q, completions %v", job.APIVersion, spec.CompletionMode, spec.Completions)
	}
	completions := *spec.Completions
	if spec.Parallelism != nil && (*spec.Parallelism < 1 || *spec.Parallelism > completions) {
		t.Errorf("parallelism %d: want 1 to completions (%d)", *spec.Parallelism, completions)
	}
	pod := spec.Template.Spec
	if pod.RestartPolicy != "Never" && pod.RestartPolicy != "OnFailure" {
		t.Errorf("restartPolicy %q: a Job's pods need Never or OnFailure", pod.RestartPolicy)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image == "" {
		t.Error("no image")
	}
	argv := append(slices.Clone(c.Command), c.Args...)
	line := strings.Join(argv, " ")
	m := regexp.MustCompile(`--shard[ =]auto/(\d+)(\s|$)`).FindAllStringSubmatch(line, -1)
	if len(m) != 1 {
		t.Fatalf("the command %q does not give --shard auto/N once", line)
	}
	if n, _ := strconv.Atoi(m[0][1]); n != completions {
		t.Errorf("--shard auto/%d, but completions is %d: shards would be lost or empty", n, completions)
	}
	perIndex := `\$\{?JOB_COMPLETION_INDEX\b`
	if !regexp.MustCompile(`--joblog[ =]\S*`+perIndex).MatchString(line) || !strings.Contains(line, "--resume") {
		t.Errorf("the command %q does not keep a job log per index, with --resume (a retried pod would run its shard again)", line)
	}
	if !regexp.MustCompile(`>>\s*\S*` + perIndex).MatchString(line) {
		t.Errorf("the command %q does not append to a result file per index", line)
	}

	root := t.TempDir()
	volumes := podVolumes(t, root, pod.Volumes, configMaps, nil, claims)
	argv = mountedArgv(t, argv, c.VolumeMounts, volumes)
	var env []string
	for _, e := range c.Env {
		env = append(env, e.Name+"="+e.Value)
	}
	runIndex := func(i int) {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = cleanEnv(t, append(env, "JOB_COMPLETION_INDEX="+strconv.Itoa(i))...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("index %d: %v\n%s", i, err, out)
		}
	}
	var results []string
	for i := range completions {
		runIndex(i)
		results = append(results, filepath.Join(volumes["out"], "results-"+strconv.Itoa(i)+".jsonl"))
	}
	items := nonEmptyLines(configMaps["rsh-squares"]["items.txt"])
	checkShardResults(t, items, results)

	// A pod retried after its shard was done (its index run again) finds
	// everything in its job log: nothing runs twice.
	runIndex(1)
	checkShardResults(t, items, results)
}

// readExample returns the absolute path of the example at rel (from the
// repository) and its text.
func readExample(t *testing.T, rel string) (string, []byte) {
	t.Helper()
	path, err := filepath.Abs(rel)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, data
}

// The Slurm array script: --shard auto (the count from Slurm), its
// #SBATCH lines where sbatch reads them; run as each task of its --array,
// with Slurm's variables, the shards give every item one result, and a
// task run again alone with its shard given (as the script says to) runs
// nothing twice.
func TestSlurmArrayExample(t *testing.T) {
	script, data := readExample(t, "examples/slurm/rsh-array.sh")
	tasks, step := sbatchArray(t, data)
	if !regexp.MustCompile(`rsh run .*--shard ("\$\{SHARD:-auto\}"|auto)(\s|$)`).MatchString(string(data)) {
		t.Fatal("the script does not run rsh with --shard auto (the count from Slurm)")
	}

	dir := t.TempDir()
	var b strings.Builder
	var items []string
	for n := 1; n <= 40; n++ {
		items = append(items, strconv.Itoa(n))
		b.WriteString(strconv.Itoa(n) + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "items.txt"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "job.js"), []byte("module.exports = (n) => n * n;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	slurmEnv := func(id, lo, hi, step, count int) []string {
		return []string{
			"SLURM_ARRAY_JOB_ID=1000", "SLURM_CPUS_PER_TASK=2",
			"SLURM_ARRAY_TASK_ID=" + strconv.Itoa(id),
			"SLURM_ARRAY_TASK_MIN=" + strconv.Itoa(lo),
			"SLURM_ARRAY_TASK_MAX=" + strconv.Itoa(hi),
			"SLURM_ARRAY_TASK_STEP=" + strconv.Itoa(step),
			"SLURM_ARRAY_TASK_COUNT=" + strconv.Itoa(count),
		}
	}
	run := func(env []string) {
		cmd := exec.Command("sh", script, "job.js", "items.txt", "out")
		cmd.Env = cleanEnv(t, env...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", env, err, out)
		}
	}
	var results []string
	for _, id := range tasks {
		run(slurmEnv(id, tasks[0], tasks[len(tasks)-1], step, len(tasks)))
		results = append(results, filepath.Join(dir, "out", "results-"+strconv.Itoa(id)+".jsonl"))
	}
	checkShardResults(t, items, results)

	// Task 2 run again alone: Slurm makes it an array of one task; the
	// script's SHARD override gives its place in the whole array.
	k := 2
	id := tasks[k]
	run(append(slurmEnv(id, id, id, 1, 1), "SHARD="+strconv.Itoa(k)+"/"+strconv.Itoa(len(tasks))))
	checkShardResults(t, items, results)
}

// podVolumes makes a pod's volumes as directories under root, by volume
// name, as Kubernetes would: a ConfigMap's or a Secret's keys as files, a
// claim or an emptyDir as a directory. secrets holds the Secrets' keys,
// which a manifest leaves to the cluster.
func podVolumes(t *testing.T, root string, vols []k8sVolume, configMaps, secrets map[string]map[string]string, claims map[string]bool) map[string]string {
	t.Helper()
	volumes := map[string]string{}
	for _, v := range vols {
		dir := filepath.Join(root, v.Name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		volumes[v.Name] = dir
		switch {
		case v.ConfigMap != nil:
			cm, ok := configMaps[v.ConfigMap.Name]
			if !ok {
				t.Fatalf("volume %s: no ConfigMap %s in the manifest", v.Name, v.ConfigMap.Name)
			}
			writeKeys(t, dir, "ConfigMap "+v.ConfigMap.Name, cm, v.ConfigMap.Items)
		case v.Secret != nil:
			sec, ok := secrets[v.Secret.SecretName]
			if !ok {
				t.Fatalf("volume %s: Secret %s is not one the test makes", v.Name, v.Secret.SecretName)
			}
			writeKeys(t, dir, "Secret "+v.Secret.SecretName, sec, v.Secret.Items)
		case v.PersistentVolumeClaim != nil:
			if !claims[v.PersistentVolumeClaim.ClaimName] {
				t.Errorf("volume %s: no PersistentVolumeClaim %s in the manifest", v.Name, v.PersistentVolumeClaim.ClaimName)
			}
		case v.EmptyDir != nil:
		default:
			t.Fatalf("volume %s: of a kind this test does not make", v.Name)
		}
	}
	return volumes
}

// writeKeys writes the keys of data that items choose into dir, each as
// a file.
func writeKeys(t *testing.T, dir, what string, data map[string]string, items k8sKeys) {
	t.Helper()
	files := map[string]string{}
	for key := range data {
		files[key] = key
	}
	if len(items) > 0 {
		files = map[string]string{}
		for _, it := range items {
			if _, ok := data[it.Key]; !ok {
				t.Fatalf("%s has no key %s", what, it.Key)
			}
			files[it.Key] = it.Path
		}
	}
	for key, path := range files {
		if err := os.WriteFile(filepath.Join(dir, path), []byte(data[key]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// mountedArgv is a container's command as it runs in the test: each
// volume's directory (from podVolumes) in place of its mount path. Every
// absolute path the command names must be in a mounted volume.
func mountedArgv(t *testing.T, argv []string, mounts []k8sMount, volumes map[string]string) []string {
	t.Helper()
	mounts = slices.Clone(mounts)
	// Longest mount paths first: the replacer tries its pairs in order.
	slices.SortFunc(mounts, func(a, b k8sMount) int {
		return len(b.MountPath) - len(a.MountPath)
	})
	for _, word := range strings.Fields(strings.Join(argv[1:], " ")) {
		word = strings.TrimLeft(word, "<>")
		if strings.HasPrefix(word, "/") && !slices.ContainsFunc(mounts, func(m k8sMount) bool { return strings.HasPrefix(word, m.MountPath+"/") }) {
			t.Errorf("the command names %s, outside the mounted volumes", word)
		}
	}
	var pairs []string
	for _, mnt := range mounts {
		dir, ok := volumes[mnt.Name]
		if !ok {
			t.Fatalf("mount %s: no volume %s", mnt.MountPath, mnt.Name)
		}
		pairs = append(pairs, mnt.MountPath+"/", dir+"/")
	}
	r := strings.NewReplacer(pairs...)
	out := make([]string, len(argv))
	for i, arg := range argv {
		out[i] = r.Replace(arg)
	}
	return out
}

// sbatchArray reads the --array of an sbatch script, which must be an
// even range MIN-MAX[:STEP] of at least two tasks, and checks that every
// #SBATCH line comes before the first command (sbatch reads no more).
// It returns the tasks' ids and the step.
func sbatchArray(t *testing.T, script []byte) (tasks []int, step int) {
	t.Helper()
	var array string
	commands := false // past the first command: sbatch reads no more #SBATCH lines
	for l := range strings.SplitSeq(string(script), "\n") {
		switch {
		case strings.HasPrefix(l, "#SBATCH"):
			if commands {
				t.Errorf("%q comes after the first command: sbatch ignores it", l)
			}
			if a, ok := strings.CutPrefix(l, "#SBATCH --array="); ok {
				array = a
			}
		case strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "#"):
			commands = true
		}
	}
	m := regexp.MustCompile(`^(\d+)-(\d+)(?::(\d+))?(?:%\d+)?$`).FindStringSubmatch(array)
	if m == nil {
		t.Fatalf("#SBATCH --array=%q: want MIN-MAX[:STEP], the form --shard auto numbers", array)
	}
	lo, _ := strconv.Atoi(m[1])
	hi, _ := strconv.Atoi(m[2])
	step = 1
	if m[3] != "" {
		step, _ = strconv.Atoi(m[3])
	}
	for id := lo; id <= hi && step > 0; id += step {
		tasks = append(tasks, id)
	}
	if len(tasks) < 2 {
		t.Fatalf("--array=%s has %d tasks: nothing is spread", array, len(tasks))
	}
	return tasks, step
}
