package cli

import (
	"encoding/binary"
	"fmt"
	"iter"
	"math/bits"
	"strconv"
	"strings"

	"github.com/runspaces/rsh/pool"
)

// Static sharding (--shard I/N) spreads one run over N processes, on as
// many machines, with nothing shared between them but the input: each
// runs the items whose input hash (the job log's, inputHash) falls in its
// shard. An item's shard depends on the item alone, so the N shards are
// disjoint and together hold every item, however the input is ordered or
// extended; and each shard's --joblog and --resume work as they do for a
// whole run, because its items keep their seqs, their positions in the
// whole input.
//
// With --batch-size, a shard's own items are batched (sharding comes
// first): an item's shard never depends on its neighbours. A batch's seq
// is then the position of its first item; the others are the shard's next
// items, not the positions after it.
//
// --shard auto[/N] takes the index (and the count, where it is known)
// from the environment, in this order: RSH_SHARD, a Kubernetes Indexed
// Job's JOB_COMPLETION_INDEX, a Slurm array task's SLURM_ARRAY_TASK_*,
// GNU parallel's PARALLEL_SEQ. Every one found must name the same shard:
// a variable inherited from somewhere else (a stale RSH_SHARD, rsh under
// GNU parallel inside a Slurm task) must not quietly pick a shard, which
// would run one shard twice and another never.

// shard is the part of the input a run takes: the items whose input hash
// falls in shard index of count. The zero value (count 0) takes every
// item.
type shard struct {
	index, count uint64
}

func (s shard) String() string {
	return strconv.FormatUint(s.index, 10) + "/" + strconv.FormatUint(s.count, 10)
}

// shardOf returns which of count shards the input with key falls in.
//
// The first 8 bytes of the key, big-endian, are a fraction of 2^64 scaled
// to count (multiply-shift: the high word of key×count), so shard i holds
// the hashes in [i/count, (i+1)/count). Like key mod count, it gives
// every shard the same number of hash values to within one, out of
// 2^64/count; unlike it, it needs no division, and a shard stays a range
// when count doubles: shard i of N is shards 2i and 2i+1 of 2N.
func shardOf(key inputKey, count uint64) uint64 {
	hi, _ := bits.Mul64(binary.BigEndian.Uint64(key[:8]), count)
	return hi
}

// filter keeps the items of s and numbers each with its position in the
// whole input, counting the items of the other shards, so that a shard's
// records and job log name the seqs a run over the whole input would give
// them. It comes before batching and --resume, which keep those seqs.
func (s shard) filter(items iter.Seq[pool.Item]) iter.Seq[pool.Item] {
	return func(yield func(pool.Item) bool) {
		var pos int64 // input records before the item
		for it := range items {
			if it.Seq > 0 {
				pos = it.Seq - 1
			}
			seq := pos + 1
			pos += int64(max(it.Count, 1))
			if shardOf(inputHash(it.JSON()), s.count) != s.index {
				continue
			}
			it.Seq = seq
			if !yield(it) {
				return
			}
		}
	}
}

// The environment variables --shard auto reads.
const (
	envRSHShard    = "RSH_SHARD"            // I or I/N, set by hand or by any launcher
	envK8sIndex    = "JOB_COMPLETION_INDEX" // a Kubernetes Indexed Job's pod index, 0-based
	envSlurmID     = "SLURM_ARRAY_TASK_ID"
	envSlurmMin    = "SLURM_ARRAY_TASK_MIN"
	envSlurmMax    = "SLURM_ARRAY_TASK_MAX"
	envSlurmStep   = "SLURM_ARRAY_TASK_STEP"
	envSlurmCount  = "SLURM_ARRAY_TASK_COUNT"
	envParallelSeq = "PARALLEL_SEQ" // GNU parallel's job number, 1-based
)

// shardUsageSyntax is what --shard takes, for messages.
const shardUsageSyntax = "want I/N (0 <= I < N), auto/N or auto"

// shardClaim is a shard named by the environment.
type shardClaim struct {
	from  string // the variables that name it, NAME=VALUE, for messages
	index uint64
	count uint64 // 0: the variables do not say
}

func (c shardClaim) String() string {
	if c.count == 0 {
		return fmt.Sprintf("%s (shard %d)", c.from, c.index)
	}
	return fmt.Sprintf("%s (shard %d of %d)", c.from, c.index, c.count)
}

// lookupEnv is os.LookupEnv, or a map in tests.
type lookupEnv func(name string) (string, bool)

// get returns the value of name and whether it is set and not empty (an
// empty variable is how a shell unsets one for a command).
func (l lookupEnv) get(name string) (string, bool) {
	v, ok := l(name)
	return v, ok && v != ""
}

// parseShard reads --shard SPEC: I/N, or auto/N or auto, which take the
// index (and the count) from the environment through lookup.
func parseShard(spec string, lookup lookupEnv) (shard, error) {
	if spec == "" {
		return shard{}, nil
	}
	is, ns, hasCount := strings.Cut(spec, "/")
	var count uint64
	if hasCount {
		n, err := strconv.ParseUint(ns, 10, 64)
		if err != nil || n == 0 {
			return shard{}, usagef("--shard %s: N %q: want a whole number of shards, at least 1", spec, ns)
		}
		count = n
	}
	if is != "auto" {
		i, err := strconv.ParseUint(is, 10, 64)
		switch {
		case err != nil:
			return shard{}, usagef("--shard %s: %s", spec, shardUsageSyntax)
		case !hasCount:
			return shard{}, usagef("--shard %s: no count: write --shard %s/N for shard %s of N", spec, is, is)
		case i >= count:
			return shard{}, usagef("--shard %s: shard %d of %d does not exist: shards are numbered from 0 to N-1", spec, i, count)
		}
		return shard{index: i, count: count}, nil
	}
	claims, err := envShards(lookup)
	if err != nil {
		return shard{}, usagef("--shard %s: %v", spec, err)
	}
	if len(claims) == 0 {
		return shard{}, usagef("--shard %s: no shard index in the environment: none of %s, %s, %s or %s is set; give --shard I/N",
			spec, envRSHShard, envK8sIndex, envSlurmID, envParallelSeq)
	}
	s := shard{index: claims[0].index, count: count}
	for _, c := range claims[1:] {
		if c.index != s.index {
			return shard{}, usagef("--shard %s: the environment names different shards: %s; give --shard I/N", spec, joinClaims(claims))
		}
	}
	for _, c := range claims {
		switch {
		case c.count == 0:
		case s.count == 0:
			s.count = c.count
		case c.count != s.count && hasCount:
			return shard{}, usagef("--shard %s: the environment gives a count of %d, not %d: %s", spec, c.count, count, c)
		case c.count != s.count:
			return shard{}, usagef("--shard %s: the environment names different shard counts: %s; give --shard I/N", spec, joinClaims(claims))
		}
	}
	if s.count == 0 {
		return shard{}, usagef("--shard %s: %s gives the shard index but not the count: write --shard auto/N", spec, joinClaims(claims))
	}
	if s.index >= s.count {
		return shard{}, usagef("--shard %s: %s, but shards are numbered from 0 to %d", spec, joinClaims(claims), s.count-1)
	}
	return s, nil
}

func joinClaims(claims []shardClaim) string {
	parts := make([]string, len(claims))
	for i, c := range claims {
		parts[i] = c.String()
	}
	return strings.Join(parts, ", ")
}

// envShards returns the shards the environment names, in the order of
// its sources, or an error when a source's variables are malformed.
func envShards(lookup lookupEnv) ([]shardClaim, error) {
	var claims []shardClaim
	for _, source := range []func(lookupEnv) (*shardClaim, error){rshShardEnv, k8sShardEnv, slurmShardEnv, parallelShardEnv} {
		c, err := source(lookup)
		if err != nil {
			return nil, err
		}
		if c != nil {
			claims = append(claims, *c)
		}
	}
	return claims, nil
}

// envNumber reads the whole number in the variable name, if it is set.
func envNumber(lookup lookupEnv, name string) (n uint64, set bool, err error) {
	v, ok := lookup.get(name)
	if !ok {
		return 0, false, nil
	}
	n, err = strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, true, fmt.Errorf("%s=%q: want a whole number", name, v)
	}
	return n, true, nil
}

// rshShardEnv reads RSH_SHARD: I, or I/N.
func rshShardEnv(lookup lookupEnv) (*shardClaim, error) {
	v, ok := lookup.get(envRSHShard)
	if !ok {
		return nil, nil
	}
	bad := fmt.Errorf("%s=%q: want I or I/N (0 <= I < N)", envRSHShard, v)
	is, ns, hasCount := strings.Cut(v, "/")
	i, err := strconv.ParseUint(is, 10, 64)
	if err != nil {
		return nil, bad
	}
	c := &shardClaim{from: envRSHShard + "=" + v, index: i}
	if hasCount {
		if c.count, err = strconv.ParseUint(ns, 10, 64); err != nil || c.count == 0 {
			return nil, bad
		}
	}
	return c, nil
}

// k8sShardEnv reads JOB_COMPLETION_INDEX, which Kubernetes sets in the
// pods of an Indexed Job (0 to completions-1). Kubernetes does not expose
// the number of completions, so the count must be given.
func k8sShardEnv(lookup lookupEnv) (*shardClaim, error) {
	i, ok, err := envNumber(lookup, envK8sIndex)
	if !ok || err != nil {
		return nil, err
	}
	return &shardClaim{from: fmt.Sprintf("%s=%d", envK8sIndex, i), index: i}, nil
}

// parallelShardEnv reads PARALLEL_SEQ, GNU parallel's number of the job,
// from 1: shard SEQ-1. (Not PARALLEL_JOBSLOT: a slot is reused by the
// jobs that follow, so two jobs would take the same shard.) GNU parallel
// does not say how many jobs there will be, so the count must be given.
func parallelShardEnv(lookup lookupEnv) (*shardClaim, error) {
	seq, ok, err := envNumber(lookup, envParallelSeq)
	if !ok || err != nil {
		return nil, err
	}
	if seq == 0 {
		return nil, fmt.Errorf("%s=0: GNU parallel numbers its jobs from 1", envParallelSeq)
	}
	return &shardClaim{from: fmt.Sprintf("%s=%d", envParallelSeq, seq), index: seq - 1}, nil
}

// slurmShardEnv reads a Slurm array task's variables. The tasks of
// --array=MIN-MAX[:STEP] are shards 0 to COUNT-1: task ID is shard
// (ID-MIN)/STEP. An array of other indices (a list such as 1,2,5) has no
// such numbering, and is refused rather than guessed at. Slurm leaves
// SLURM_ARRAY_TASK_STEP out of some arrays: it is then 1.
func slurmShardEnv(lookup lookupEnv) (*shardClaim, error) {
	id, ok, err := envNumber(lookup, envSlurmID)
	if !ok || err != nil {
		return nil, err
	}
	var from []string
	var missing []string
	num := func(name string, dflt uint64, required bool) uint64 {
		n, set, e := envNumber(lookup, name)
		switch {
		case e != nil:
			if err == nil {
				err = e
			}
		case set:
			from = append(from, fmt.Sprintf("%s=%d", name, n))
			return n
		case required:
			missing = append(missing, name)
		}
		return dflt
	}
	from = append(from, fmt.Sprintf("%s=%d", envSlurmID, id))
	lo := num(envSlurmMin, 0, true)
	hi := num(envSlurmMax, 0, true)
	step := num(envSlurmStep, 1, false)
	count := num(envSlurmCount, 0, true)
	found := strings.Join(from, " ")
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("a Slurm array task without %s (found %s)", strings.Join(missing, ", "), found)
	}
	if step == 0 || hi < lo || id < lo || id > hi || (hi-lo)%step != 0 || (id-lo)%step != 0 || count != (hi-lo)/step+1 {
		return nil, fmt.Errorf("the Slurm array's indices are not an even range (%s): shards come from --array=MIN-MAX[:STEP] only; give --shard I/N", found)
	}
	return &shardClaim{from: found, index: (id - lo) / step, count: count}, nil
}
