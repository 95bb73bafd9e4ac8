package cli

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/vm"
)

// envMap is a lookupEnv over a map.
func envMap(m map[string]string) lookupEnv {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

// slurm is the environment of task id of a Slurm array from lo to hi by
// step, with count tasks ("" leaves a variable out).
func slurm(id, lo, hi, step, count string) map[string]string {
	m := map[string]string{}
	for name, v := range map[string]string{envSlurmID: id, envSlurmMin: lo, envSlurmMax: hi, envSlurmStep: step, envSlurmCount: count} {
		if v != "" {
			m[name] = v
		}
	}
	return m
}

// with returns m with the variables kv (NAME, VALUE, ...) added.
func with(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// parseShard reads I/N, and auto/N or auto from each source of the
// environment; what is missing, malformed or inconsistent is a usage
// error that names what was found.
func TestParseShard(t *testing.T) {
	none := map[string]string{}
	tests := []struct {
		name string
		spec string
		env  map[string]string
		want string   // the shard, I/N ("" when an error is wanted)
		errs []string // what the error says
	}{
		{name: "off", spec: "", env: none, want: "0/0"},
		{name: "explicit", spec: "2/3", env: none, want: "2/3"},
		{name: "explicit first", spec: "0/1", env: none, want: "0/1"},
		{name: "explicit ignores the environment", spec: "1/2", env: map[string]string{envK8sIndex: "0", envRSHShard: "5"}, want: "1/2"},
		{name: "explicit I too big", spec: "3/3", env: none, errs: []string{"--shard 3/3: shard 3 of 3 does not exist", "0 to N-1"}},
		{name: "explicit no N", spec: "2", env: none, errs: []string{"--shard 2: no count", "--shard 2/N"}},
		{name: "zero N", spec: "0/0", env: none, errs: []string{`N "0"`, "at least 1"}},
		{name: "negative", spec: "-1/3", env: none, errs: []string{"want I/N"}},
		{name: "words", spec: "one/3", env: none, errs: []string{"want I/N"}},
		{name: "bad N", spec: "auto/x", env: map[string]string{envK8sIndex: "0"}, errs: []string{`N "x"`}},

		{name: "nothing in the environment", spec: "auto/3", env: none,
			errs: []string{"no shard index in the environment", envRSHShard, envK8sIndex, envSlurmID, envParallelSeq}},
		{name: "an empty variable is unset", spec: "auto/3", env: map[string]string{envRSHShard: "", envK8sIndex: "1"}, want: "1/3"},

		{name: "RSH_SHARD I/N", spec: "auto", env: map[string]string{envRSHShard: "1/3"}, want: "1/3"},
		{name: "RSH_SHARD I with N", spec: "auto/3", env: map[string]string{envRSHShard: "2"}, want: "2/3"},
		{name: "RSH_SHARD I/N with the same N", spec: "auto/3", env: map[string]string{envRSHShard: "2/3"}, want: "2/3"},
		{name: "RSH_SHARD I without N", spec: "auto", env: map[string]string{envRSHShard: "2"},
			errs: []string{"RSH_SHARD=2 (shard 2) gives the shard index but not the count", "--shard auto/N"}},
		{name: "RSH_SHARD N differs", spec: "auto/4", env: map[string]string{envRSHShard: "1/3"},
			errs: []string{"count of 3, not 4", "RSH_SHARD=1/3"}},
		{name: "RSH_SHARD I too big", spec: "auto", env: map[string]string{envRSHShard: "3/3"},
			errs: []string{"RSH_SHARD=3/3 (shard 3 of 3)", "from 0 to 2"}},
		{name: "RSH_SHARD malformed", spec: "auto", env: map[string]string{envRSHShard: "a/b"}, errs: []string{`RSH_SHARD="a/b": want I or I/N`}},
		{name: "RSH_SHARD zero N", spec: "auto", env: map[string]string{envRSHShard: "0/0"}, errs: []string{`RSH_SHARD="0/0"`}},

		{name: "Kubernetes", spec: "auto/3", env: map[string]string{envK8sIndex: "2"}, want: "2/3"},
		{name: "Kubernetes without N", spec: "auto", env: map[string]string{envK8sIndex: "2"},
			errs: []string{"JOB_COMPLETION_INDEX=2 (shard 2) gives the shard index but not the count"}},
		{name: "Kubernetes index too big", spec: "auto/3", env: map[string]string{envK8sIndex: "3"},
			errs: []string{"JOB_COMPLETION_INDEX=3 (shard 3)", "from 0 to 2"}},
		{name: "Kubernetes malformed", spec: "auto/3", env: map[string]string{envK8sIndex: "-1"},
			errs: []string{`JOB_COMPLETION_INDEX="-1": want a whole number`}},

		{name: "Slurm 0-3", spec: "auto", env: slurm("2", "0", "3", "1", "4"), want: "2/4"},
		{name: "Slurm 1-4 without a step", spec: "auto", env: slurm("1", "1", "4", "", "4"), want: "0/4"},
		{name: "Slurm 1-7:2", spec: "auto", env: slurm("5", "1", "7", "2", "4"), want: "2/4"},
		{name: "Slurm 1-7:2 last", spec: "auto/4", env: slurm("7", "1", "7", "2", "4"), want: "3/4"},
		{name: "Slurm one task", spec: "auto", env: slurm("9", "9", "9", "1", "1"), want: "0/1"},
		{name: "Slurm N differs", spec: "auto/5", env: slurm("2", "0", "3", "1", "4"),
			errs: []string{"count of 4, not 5", "SLURM_ARRAY_TASK_ID=2", "SLURM_ARRAY_TASK_COUNT=4"}},
		{name: "Slurm task run again alone", spec: "auto/4", env: slurm("2", "2", "2", "1", "1"),
			errs: []string{"count of 1, not 4"}},
		{name: "Slurm list", spec: "auto", env: slurm("2", "1", "5", "", "3"),
			errs: []string{"not an even range", "SLURM_ARRAY_TASK_ID=2 SLURM_ARRAY_TASK_MIN=1 SLURM_ARRAY_TASK_MAX=5 SLURM_ARRAY_TASK_COUNT=3", "--shard I/N"}},
		{name: "Slurm count inconsistent", spec: "auto", env: slurm("1", "0", "3", "1", "3"),
			errs: []string{"not an even range", "SLURM_ARRAY_TASK_COUNT=3"}},
		{name: "Slurm off the step", spec: "auto", env: slurm("4", "1", "7", "2", "4"),
			errs: []string{"not an even range", "SLURM_ARRAY_TASK_ID=4", "SLURM_ARRAY_TASK_STEP=2"}},
		{name: "Slurm range not a whole number of steps", spec: "auto", env: slurm("1", "1", "8", "2", "4"),
			errs: []string{"not an even range"}},
		{name: "Slurm id outside", spec: "auto", env: slurm("9", "1", "7", "2", "4"), errs: []string{"not an even range"}},
		{name: "Slurm step zero", spec: "auto", env: slurm("1", "1", "1", "0", "1"), errs: []string{"not an even range"}},
		{name: "Slurm missing", spec: "auto", env: slurm("1", "0", "", "", ""),
			errs: []string{"without SLURM_ARRAY_TASK_MAX, SLURM_ARRAY_TASK_COUNT", "found SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_MIN=0"}},
		{name: "Slurm malformed", spec: "auto", env: slurm("1", "0", "3", "x", "4"), errs: []string{`SLURM_ARRAY_TASK_STEP="x"`}},

		{name: "GNU parallel", spec: "auto/3", env: map[string]string{envParallelSeq: "1"}, want: "0/3"},
		{name: "GNU parallel last", spec: "auto/3", env: map[string]string{envParallelSeq: "3"}, want: "2/3"},
		{name: "GNU parallel too many jobs", spec: "auto/3", env: map[string]string{envParallelSeq: "4"},
			errs: []string{"PARALLEL_SEQ=4 (shard 3)", "from 0 to 2"}},
		{name: "GNU parallel without N", spec: "auto", env: map[string]string{envParallelSeq: "1"},
			errs: []string{"PARALLEL_SEQ=1 (shard 0) gives the shard index but not the count"}},
		{name: "GNU parallel zero", spec: "auto/3", env: map[string]string{envParallelSeq: "0"}, errs: []string{"PARALLEL_SEQ=0", "from 1"}},
		{name: "GNU parallel's job slot is not an index", spec: "auto/3", env: map[string]string{"PARALLEL_JOBSLOT": "1"},
			errs: []string{"no shard index in the environment"}},

		{name: "sources that agree", spec: "auto", env: with(slurm("1", "0", "2", "1", "3"), envRSHShard, "1", envK8sIndex, "1"), want: "1/3"},
		{name: "sources that disagree", spec: "auto/3", env: map[string]string{envK8sIndex: "1", envParallelSeq: "1"},
			errs: []string{"the environment names different shards", "JOB_COMPLETION_INDEX=1 (shard 1)", "PARALLEL_SEQ=1 (shard 0)", "--shard I/N"}},
		{name: "a stale RSH_SHARD", spec: "auto", env: with(slurm("1", "0", "3", "1", "4"), envRSHShard, "0/4"),
			errs: []string{"different shards", "RSH_SHARD=0/4 (shard 0 of 4)", "(shard 1 of 4)"}},
		{name: "counts that disagree", spec: "auto", env: with(slurm("1", "0", "2", "1", "3"), envRSHShard, "1/4"),
			errs: []string{"different shard counts", "RSH_SHARD=1/4 (shard 1 of 4)", "(shard 1 of 3)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseShard(tt.spec, envMap(tt.env))
			if tt.want != "" {
				if err != nil || s.String() != tt.want {
					t.Fatalf("--shard %s with %v: got %v, %v; want %s", tt.spec, tt.env, s, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("--shard %s with %v: got %v, want an error", tt.spec, tt.env, s)
			}
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Errorf("--shard %s: %v is not a usage error", tt.spec, err)
			}
			if !strings.HasPrefix(err.Error(), "--shard "+tt.spec+": ") {
				t.Errorf("error %q does not start with the flag", err)
			}
			for _, want := range tt.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

// --shard is read and checked with the other flags.
func TestParseRunShard(t *testing.T) {
	o, err := parseRun([]string{"-e", "x => x", "--shard", "1/4"})
	if err != nil || o.shard != (shard{index: 1, count: 4}) {
		t.Fatalf("got %+v, %v", o, err)
	}
	if _, err := parseRun([]string{"-e", "x => x", "--shard", "4/4"}); err == nil || !strings.Contains(err.Error(), "--shard 4/4") {
		t.Errorf("--shard 4/4: %v", err)
	}
	if o, err := parseRun([]string{"-e", "x => x"}); err != nil || o.shard.count != 0 {
		t.Errorf("without --shard: %+v, %v", o, err)
	}
}

// numberItems returns items whose inputs are the numbers in order.
func numberItems(order []int) []pool.Item {
	items := make([]pool.Item, len(order))
	for i, n := range order {
		items[i] = pool.Item{Value: json.RawMessage(strconv.Itoa(n))}
	}
	return items
}

// shardItems runs the items through the filter of shard s, and returns
// each kept input with its seq.
func shardItems(s shard, items []pool.Item) map[string]int64 {
	got := map[string]int64{}
	for it := range s.filter(slices.Values(items)) {
		got[string(it.JSON())] = it.Seq
	}
	return got
}

// The shards of N are disjoint and together hold every item; an item's
// shard does not depend on the order of the input or on what else it
// holds; and a kept item's seq is its position in the whole input.
func TestShardFilterPartitions(t *testing.T) {
	const items = 3000
	order := make([]int, items)
	for i := range order {
		order[i] = i + 1
	}
	rng := rand.New(rand.NewPCG(1, 2))
	shuffled := slices.Clone(order)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	extended := append(slices.Clone(shuffled), items+1, items+2, items+3)

	for _, n := range []uint64{1, 2, 3, 7, 64} {
		owner := map[string]uint64{}
		for i := range n {
			s := shard{index: i, count: n}
			got := shardItems(s, numberItems(order))
			// At least a third of a fair share: a mapping that leaves
			// shards empty or lopsided fails.
			if len(got) < items/int(n)/3 {
				t.Errorf("shard %v holds %d of %d items", s, len(got), items)
			}
			for in, seq := range got {
				if prev, ok := owner[in]; ok {
					t.Fatalf("item %s is in shards %d and %d of %d", in, prev, i, n)
				}
				owner[in] = i
				if want, _ := strconv.Atoi(in); seq != int64(want) {
					t.Errorf("shard %v: item %s has seq %d, want its position %d", s, in, seq, want)
				}
			}
			for in, seq := range shardItems(s, numberItems(shuffled)) {
				if _, ok := got[in]; !ok {
					t.Errorf("shard %v: item %s is in it only when the input is shuffled", s, in)
				}
				if v, _ := strconv.Atoi(in); shuffled[seq-1] != v {
					t.Errorf("shard %v, shuffled: item %s has seq %d, which holds %d", s, in, seq, shuffled[seq-1])
				}
			}
			ext := shardItems(s, numberItems(extended))
			for in := range got {
				if _, ok := ext[in]; !ok {
					t.Errorf("shard %v: item %s left it when the input was extended", s, in)
				}
			}
		}
		if len(owner) != items {
			t.Errorf("%d shards hold %d of %d items", n, len(owner), items)
		}
	}
}

// The mapping from an input to its shard is part of how a run spread
// over machines agrees with itself: an rsh that changed it would, given
// the same --shard, run other items than the rsh that started the run
// (and its --resume would find none of them done). These are its answers.
func TestShardOfKnownAnswers(t *testing.T) {
	var got []uint64
	for n := 1; n <= 10; n++ {
		got = append(got, shardOf(inputHash(json.RawMessage(strconv.Itoa(n))), 3))
	}
	got = append(got, shardOf(inputHash(json.RawMessage(`"host7"`)), 1000))
	want := []uint64{1, 2, 0, 0, 2, 2, 1, 0, 0, 0, 609}
	if !slices.Equal(got, want) {
		t.Errorf("shards of 1..10 of 3 and of \"host7\" of 1000: got %v, want %v", got, want)
	}
}

// Items that carry seqs (a shard's) keep them through batching and
// --resume; the items after one are numbered on from there.
func TestShardSeqsSurviveBatchesAndResume(t *testing.T) {
	s := shard{index: 1, count: 3}
	var kept []int64
	for it := range s.filter(slices.Values(numberItems([]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}))) {
		kept = append(kept, it.Seq)
	}
	if len(kept) < 3 {
		t.Fatalf("shard %v of 1..12 holds %v: want at least 3 items for this test", s, kept)
	}

	var batches []pool.Item
	for b := range batched(s.filter(slices.Values(numberItems([]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}))), 2) {
		batches = append(batches, b)
	}
	for i, b := range batches {
		if b.Seq != kept[2*i] || b.Count != min(2, len(kept)-2*i) {
			t.Errorf("batch %d: seq %d count %d, want the seq of its first item %d", i, b.Seq, b.Count, kept[2*i])
		}
	}
	if n := (len(kept) + 1) / 2; len(batches) != n {
		t.Errorf("%d batches of %d items, want %d", len(batches), len(kept), n)
	}

	// A job log in which the shard's first item succeeded: resuming skips
	// it and runs the others under their own seqs.
	log := filepath.Join(t.TempDir(), "log")
	done := &vm.Result{Seq: kept[0], Input: json.RawMessage(strconv.FormatInt(kept[0], 10)), Status: vm.Success, Attempts: 1}
	line := appendJoblogLine(nil, done, &timeStamps{})
	if err := os.WriteFile(log, line, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := readJoblog(log, false)
	if err != nil {
		t.Fatal(err)
	}
	var skipped atomic.Int64
	var resumed []int64
	for it := range l.filter(s.filter(slices.Values(numberItems([]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}))), false, &skipped) {
		resumed = append(resumed, it.Seq)
	}
	if !slices.Equal(resumed, kept[1:]) || skipped.Load() != 1 {
		t.Errorf("resumed %v (skipped %d), want %v (skipped 1)", resumed, skipped.Load(), kept[1:])
	}
}

// A shard the environment does not give, or gives wrongly, is a usage
// error: exit code 2, before anything runs.
func TestShardExitCodes(t *testing.T) {
	for _, name := range []string{envRSHShard, envK8sIndex, envSlurmID, envSlurmMin, envSlurmMax, envSlurmStep, envSlurmCount, envParallelSeq} {
		t.Setenv(name, "") // empty: unset, whatever runs the test
	}
	run := func(args ...string) (int, string, string) {
		var out, errOut strings.Builder
		code := Main(context.Background(), append([]string{"run", "-e", "x => x", "-k"}, args...),
			Env{Stdin: strings.NewReader("1\n2\n3\n4\n5\n6\n"), Stdout: &out, Stderr: &errOut})
		return code, out.String(), errOut.String()
	}
	if code, out, stderr := run("--shard", "auto/3"); code != ExitUsage || out != "" || !strings.Contains(stderr, "no shard index in the environment") {
		t.Errorf("no index: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	t.Setenv(envK8sIndex, "3")
	if code, out, stderr := run("--shard", "auto/3"); code != ExitUsage || out != "" || !strings.Contains(stderr, "JOB_COMPLETION_INDEX=3") {
		t.Errorf("index 3 of 3: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	t.Setenv(envK8sIndex, "0")
	code, out, stderr := run("--shard", "auto/3")
	// 1..6 fall in shards 1 2 0 0 2 2 of 3 (TestShardOfKnownAnswers).
	if code != ExitOK || out != "3\n4\n" {
		t.Errorf("shard 0 of 3 of 1..6: exit %d, stdout %q, stderr %q; want 3 and 4", code, out, stderr)
	}
}

// A shard is a range of hash values: shard i of N is shards 2i and 2i+1
// of 2N, so a slow shard can be split in two (README).
func TestShardSplitsInTwo(t *testing.T) {
	for n := range 2000 {
		key := inputHash(json.RawMessage(strconv.Itoa(n)))
		for _, count := range []uint64{1, 2, 3, 5, 1000, 1 << 40} {
			if half, whole := shardOf(key, 2*count)/2, shardOf(key, count); half != whole {
				t.Fatalf("item %d: shard %d of %d, but shard %d of %d", n, whole, count, shardOf(key, 2*count), 2*count)
			}
		}
	}
}

// The bar of a shard has no total: the input's count is not the shard's.
func TestShardProgressHasNoTotal(t *testing.T) {
	file := filepath.Join(t.TempDir(), "items.txt")
	var b strings.Builder
	for n := 1; n <= 300; n++ {
		b.WriteString(strconv.Itoa(n) + "\n")
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		shard     string
		wantTotal bool
	}{{"", true}, {"0/1", false}, {"1/3", false}} {
		var out, errOut strings.Builder
		args := []string{"run", "-e", "x => { sleep(1); return x }", "--progress", file}
		if tc.shard != "" {
			args = append(args, "--shard", tc.shard)
		}
		if code := Main(context.Background(), args, Env{Stdout: &out, Stderr: &errOut}); code != ExitOK {
			t.Fatalf("--shard %q: exit %d: %s", tc.shard, code, errOut.String())
		}
		if got := strings.Contains(errOut.String(), "/300"); got != tc.wantTotal {
			t.Errorf("--shard %q: a total of 300 on the bar: %v, want %v; stderr:\n%s", tc.shard, got, tc.wantTotal, errOut.String())
		}
	}
}
