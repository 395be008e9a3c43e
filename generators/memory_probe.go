package generators

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
)

// MemoryProbe reads how much memory the process can still use, from the
// operating system: on Linux, MemAvailable in /proc/meminfo, the limit of
// the process's memory cgroup (version 2 or 1) less what the cgroup uses,
// and the address-space limit (RLIMIT_AS, what ulimit -v sets) less the
// process's virtual size (VmSize in /proc/self/status). Its readers can
// be replaced, so tests do not depend on the machine. The zero value
// reads the operating system's.
type MemoryProbe struct {
	// ReadFile reads a file under /proc or /sys/fs/cgroup; nil means
	// os.ReadFile.
	ReadFile func(name string) ([]byte, error)
	// AddressSpaceLimit returns the process's soft address-space limit in
	// bytes, and false when there is none; nil means getrlimit(RLIMIT_AS)
	// on Linux and no limit elsewhere.
	AddressSpaceLimit func() (limit uint64, ok bool)
}

// MemoryLimit is one bound on the memory the process can still allocate.
type MemoryLimit struct {
	// Bytes is how much more the process may allocate under this bound.
	Bytes int64
	// Source says where the bound comes from, for messages: "MemAvailable
	// in /proc/meminfo", "the address-space limit (ulimit -v 3.8 GiB, of
	// which kiln uses 1.4 GiB)".
	Source string
	// AddressSpace says the bound counts address space (reserved as well
	// as resident memory): the address-space limit. The others count
	// resident memory.
	AddressSpace bool
	// configured marks runtime.memory_budget, which bounds what kiln's
	// stages use rather than what the system has left.
	configured bool
}

// Limits returns every bound the probe finds; none when it can read
// nothing (an operating system without /proc). A file it cannot read or
// parse leaves its bound out: the probe never fails a build by itself.
func (p *MemoryProbe) Limits() []MemoryLimit {
	var out []MemoryLimit
	if avail, ok := p.memAvailable(); ok {
		out = append(out, MemoryLimit{Bytes: avail, Source: "MemAvailable in /proc/meminfo"})
	}
	out = append(out, p.cgroupLimits()...)
	if l, ok := p.addressSpace(); ok {
		out = append(out, l)
	}
	return out
}

func (p *MemoryProbe) read(name string) ([]byte, error) {
	if p.ReadFile != nil {
		return p.ReadFile(name)
	}
	return os.ReadFile(name)
}

// memAvailable reads MemAvailable from /proc/meminfo.
func (p *MemoryProbe) memAvailable() (int64, bool) {
	data, err := p.read("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	return procField(data, "MemAvailable:")
}

// addressSpace is the address-space limit less the process's virtual
// size.
func (p *MemoryProbe) addressSpace() (MemoryLimit, bool) {
	get := p.AddressSpaceLimit
	if get == nil {
		get = addressSpaceLimit
	}
	limit, ok := get()
	if !ok || limit > 1<<62 {
		return MemoryLimit{}, false
	}
	var size int64
	if data, err := p.read("/proc/self/status"); err == nil {
		size, _ = procField(data, "VmSize:")
	}
	return MemoryLimit{
		Bytes:        int64(limit) - size,
		Source:       fmt.Sprintf("the address-space limit (ulimit -v %s, of which kiln uses %s)", formatBytes(int64(limit)), formatBytes(size)),
		AddressSpace: true,
	}, true
}

// procField reads a "Name:   1234 kB" line of a /proc file, in bytes.
func procField(data []byte, name string) (int64, bool) {
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		line := s.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		f := strings.Fields(line[len(name):])
		if len(f) == 0 {
			return 0, false
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 {
			return 0, false
		}
		if len(f) > 1 {
			switch strings.ToLower(f[1]) {
			case "kb":
				n <<= 10
			case "mb":
				n <<= 20
			default:
				return 0, false
			}
		}
		return n, true
	}
	return 0, false
}

// cgroupLimits returns the memory limits of the process's cgroup and its
// ancestors (each limits the process), the tightest first of each
// hierarchy: version 2's memory.max less memory.current, version 1's
// memory.limit_in_bytes less memory.usage_in_bytes, with the inactive
// file cache (which the kernel reclaims before it fails an allocation)
// added back.
func (p *MemoryProbe) cgroupLimits() []MemoryLimit {
	groups, err := p.read("/proc/self/cgroup")
	if err != nil {
		return nil
	}
	mounts, err := p.read("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []MemoryLimit
	for _, m := range cgroupMounts(mounts) {
		rel, ok := cgroupPath(groups, m.v2)
		if !ok {
			continue
		}
		if m.root != "/" {
			if rel != m.root && !strings.HasPrefix(rel, m.root+"/") {
				// A cgroup namespace: the mount's root is the process's
				// cgroup.
				rel = m.root
			}
			rel = strings.TrimPrefix(rel, m.root)
		}
		var best *MemoryLimit
		for dir := path.Join(m.point, rel); ; dir = path.Dir(dir) {
			if l, ok := p.cgroupLimit(dir, m.v2); ok && (best == nil || l.Bytes < best.Bytes) {
				best = &l
			}
			if dir == m.point || len(dir) <= len(m.point) {
				break
			}
		}
		if best != nil {
			out = append(out, *best)
		}
	}
	return out
}

// cgroupLimit reads one cgroup folder's memory limit and usage.
func (p *MemoryProbe) cgroupLimit(dir string, v2 bool) (MemoryLimit, bool) {
	maxFile, curFile, statKey := "memory.max", "memory.current", "inactive_file"
	if !v2 {
		maxFile, curFile, statKey = "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"
	}
	limit, err := p.readInt(path.Join(dir, maxFile))
	if err != nil || limit <= 0 || limit >= 1<<62 {
		return MemoryLimit{}, false // "max", unlimited, or unreadable
	}
	used, err := p.readInt(path.Join(dir, curFile))
	if err != nil {
		return MemoryLimit{}, false
	}
	var inactive int64
	if data, err := p.read(path.Join(dir, "memory.stat")); err == nil {
		inactive = statField(data, statKey)
	}
	return MemoryLimit{
		Bytes:  limit - used + min(inactive, used),
		Source: fmt.Sprintf("the cgroup memory limit (%s %s in %s, of which %s is used)", maxFile, formatBytes(limit), dir, formatBytes(used-min(inactive, used))),
	}, true
}

// readInt reads a file holding one integer ("max" is an error).
func (p *MemoryProbe) readInt(name string) (int64, error) {
	data, err := p.read(name)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(data))
	if s == "max" {
		return 0, errors.New("no limit")
	}
	return strconv.ParseInt(s, 10, 64)
}

// statField reads "name value" from a memory.stat file; 0 when absent.
func statField(data []byte, name string) int64 {
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) == 2 && f[0] == name {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err == nil && n > 0 {
				return n
			}
		}
	}
	return 0
}

// cgroupMount is a mounted cgroup hierarchy that accounts memory.
type cgroupMount struct {
	point, root string
	v2          bool
}

// cgroupMounts finds the cgroup version 2 mount and the version 1 mount
// of the memory controller in /proc/self/mountinfo.
func cgroupMounts(mountinfo []byte) []cgroupMount {
	var out []cgroupMount
	s := bufio.NewScanner(bytes.NewReader(mountinfo))
	for s.Scan() {
		// id parent major:minor root point options [optional...] - type source super
		f := strings.Fields(s.Text())
		sep := -1
		for i, x := range f {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+3 > len(f) {
			continue
		}
		root, point, fstype := unescapeMount(f[3]), unescapeMount(f[4]), f[sep+1]
		switch {
		case fstype == "cgroup2":
			out = append(out, cgroupMount{point: point, root: root, v2: true})
		case fstype == "cgroup" && sep+3 < len(f) && hasOption(f[sep+3], "memory"):
			out = append(out, cgroupMount{point: point, root: root})
		}
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes ("\040" for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func hasOption(opts, name string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == name {
			return true
		}
	}
	return false
}

// cgroupPath returns the process's cgroup in /proc/self/cgroup: the
// version 2 entry ("0::/path"), or the version 1 entry of the memory
// controller.
func cgroupPath(data []byte, v2 bool) (string, bool) {
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if v2 && parts[0] == "0" && parts[1] == "" {
			return parts[2], true
		}
		if !v2 && hasOption(parts[1], "memory") {
			return parts[2], true
		}
	}
	return "", false
}

// formatBytes formats a byte count for messages: "3.8 GiB", "512 MiB".
func formatBytes(n int64) string {
	const (
		kib = 1 << 10
		mib = 1 << 20
		gib = 1 << 30
		tib = 1 << 40
	)
	neg := ""
	if n < 0 {
		neg, n = "-", -n
	}
	f := float64(n)
	switch {
	case n >= tib:
		return fmt.Sprintf("%s%.1f TiB", neg, f/tib)
	case n >= 10*gib:
		return fmt.Sprintf("%s%.1f GiB", neg, f/gib)
	case n >= gib:
		return fmt.Sprintf("%s%.2f GiB", neg, f/gib)
	case n >= mib:
		return fmt.Sprintf("%s%.0f MiB", neg, f/mib)
	case n >= kib:
		return fmt.Sprintf("%s%.0f KiB", neg, f/kib)
	}
	return fmt.Sprintf("%s%d bytes", neg, n)
}
