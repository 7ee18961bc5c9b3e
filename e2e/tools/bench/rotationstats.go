package bench

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// cpuOfStat is the user plus system CPU time in seconds of a
// /proc/<pid>/stat line. The command name, in parentheses, may hold spaces,
// so the fields are counted after its last closing parenthesis.
func cpuOfStat(stat string) (float64, error) {
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("/proc stat: no command name in %q", stat)
	}
	rest := stat[end+1:]
	// After the name: state is field 3 of the line, utime 14 and stime 15.
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields after the command name", len(f))
	}
	var total float64
	for _, s := range f[11:13] {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat: %w", err)
		}
		total += v
	}
	return total / clockTicks, nil
}

// statusKiB reads one "Key:  123 kB" line of /proc/<pid>/status.
func statusKiB(status, key string) (float64, error) {
	for line := range strings.Lines(status) {
		k, v, _ := strings.Cut(line, ":")
		if k == key {
			return strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc status", key)
}

// waitSpan is one hold, or its wait for the watcher, in target group Group
// from From (the hold's start) to To (its end, or the watcher's answer).
type waitSpan struct {
	Group    int
	From, To time.Time
}

// intervalLoad counts, for each poll interval from start until end, the
// DescribeTargetHealth calls made in it and the target groups with a span
// of waits in it: what one poll per group per interval would cost.
func intervalLoad(calls []time.Time, waits []waitSpan, start, end time.Time, interval time.Duration) (perCall, perGroups []int) {
	n := int((end.Sub(start) + interval - 1) / interval)
	if n <= 0 {
		return nil, nil
	}
	perCall, perGroups = make([]int, n), make([]int, n)
	for _, c := range calls {
		if k := int(c.Sub(start) / interval); !c.Before(start) && k < n {
			perCall[k]++
		}
	}
	groups := make([]map[int]bool, n)
	for _, w := range waits {
		for k := max(int(w.From.Sub(start)/interval), 0); k < n && start.Add(time.Duration(k)*interval).Before(w.To); k++ {
			if groups[k] == nil {
				groups[k] = map[int]bool{}
			}
			groups[k][w.Group] = true
		}
	}
	for k, g := range groups {
		perGroups[k] = len(g)
	}
	return perCall, perGroups
}

// callRatio is the calls over the group-intervals that had holds, over the
// intervals where any did: 1 is one call per group with holds per
// interval, R the same group polled by each of R replicas.
func callRatio(perCall, perGroups []int) float64 {
	calls, groups := 0, 0
	for k, g := range perGroups {
		if g > 0 {
			calls += perCall[k]
			groups += g
		}
	}
	if groups == 0 {
		return 0
	}
	return float64(calls) / float64(groups)
}
