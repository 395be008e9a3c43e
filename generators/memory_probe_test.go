package generators

import (
	"io/fs"
	"reflect"
	"testing"
)

// fakeFiles is a MemoryProbe.ReadFile over a map; missing files are
// fs.ErrNotExist.
func fakeFiles(files map[string]string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		if s, ok := files[name]; ok {
			return []byte(s), nil
		}
		return nil, fs.ErrNotExist
	}
}

const (
	gib = int64(1) << 30
	mib = int64(1) << 20
)

func TestMemoryProbeLimits(t *testing.T) {
	meminfo := "MemTotal:       24683772 kB\nMemFree:         1000000 kB\nMemAvailable:    8388608 kB\n"
	status := "Name:\tkiln\nVmPeak:\t 2000000 kB\nVmSize:\t 1572864 kB\nVmRSS:\t   20000 kB\n"
	v2mounts := "31 23 0:28 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n"
	v1mounts := "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n" +
		"35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n" +
		"36 31 0:33 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
	noLimit := func() (uint64, bool) { return 0, false }
	tests := []struct {
		name  string
		files map[string]string
		as    func() (uint64, bool)
		want  []MemoryLimit
	}{
		{
			name:  "MemAvailable only",
			files: map[string]string{"/proc/meminfo": meminfo},
			as:    noLimit,
			want:  []MemoryLimit{{Bytes: 8 * gib, Source: "MemAvailable in /proc/meminfo"}},
		},
		{
			name:  "nothing readable",
			files: map[string]string{},
			as:    noLimit,
			want:  nil,
		},
		{
			name:  "address-space limit less the virtual size",
			files: map[string]string{"/proc/meminfo": meminfo, "/proc/self/status": status},
			as:    func() (uint64, bool) { return uint64(4000000) << 10, true },
			want: []MemoryLimit{
				{Bytes: 8 * gib, Source: "MemAvailable in /proc/meminfo"},
				{Bytes: (4000000 - 1572864) << 10, Source: "the address-space limit (ulimit -v 3.81 GiB, of which kiln uses 1.50 GiB)", AddressSpace: true},
			},
		},
		{
			name: "cgroup v2: the tightest of the group and its parents, inactive files added back",
			files: map[string]string{
				"/proc/meminfo":                            meminfo,
				"/proc/self/cgroup":                        "0::/kiln/build\n",
				"/proc/self/mountinfo":                     v2mounts,
				"/sys/fs/cgroup/kiln/build/memory.max":     "max\n",
				"/sys/fs/cgroup/kiln/memory.max":           "2147483648\n",
				"/sys/fs/cgroup/kiln/memory.current":       "1610612736\n",
				"/sys/fs/cgroup/kiln/memory.stat":          "anon 1073741824\ninactive_file 268435456\nactive_file 100\n",
				"/sys/fs/cgroup/memory.max":                "8589934592\n",
				"/sys/fs/cgroup/memory.current":            "1073741824\n",
				"/sys/fs/cgroup/kiln/build/memory.stat":    "inactive_file 1\n",
				"/sys/fs/cgroup/kiln/build/memory.current": "5\n",
			},
			as: noLimit,
			want: []MemoryLimit{
				{Bytes: 8 * gib, Source: "MemAvailable in /proc/meminfo"},
				{Bytes: 2*gib - 1536*mib + 256*mib, Source: "the cgroup memory limit (memory.max 2.00 GiB in /sys/fs/cgroup/kiln, of which 1.25 GiB is used)"},
			},
		},
		{
			name: "cgroup v1 memory controller",
			files: map[string]string{
				"/proc/self/cgroup":    "5:cpu:/\n4:memory:/jobs/kiln\n0::/\n",
				"/proc/self/mountinfo": v1mounts,
				"/sys/fs/cgroup/memory/jobs/kiln/memory.limit_in_bytes": "1073741824\n",
				"/sys/fs/cgroup/memory/jobs/kiln/memory.usage_in_bytes": "536870912\n",
				"/sys/fs/cgroup/memory/jobs/kiln/memory.stat":           "cache 1\ntotal_inactive_file 134217728\n",
				"/sys/fs/cgroup/memory/jobs/memory.limit_in_bytes":      "9223372036854771712\n",
				"/sys/fs/cgroup/memory/jobs/memory.usage_in_bytes":      "1\n",
			},
			as: noLimit,
			want: []MemoryLimit{
				{Bytes: gib - 512*mib + 128*mib, Source: "the cgroup memory limit (memory.limit_in_bytes 1.00 GiB in /sys/fs/cgroup/memory/jobs/kiln, of which 384 MiB is used)"},
			},
		},
		{
			name: "cgroup namespace: the mount's root is the process's group",
			files: map[string]string{
				"/proc/self/cgroup":             "0::/\n",
				"/proc/self/mountinfo":          "40 30 0:40 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
				"/sys/fs/cgroup/memory.max":     "1073741824",
				"/sys/fs/cgroup/memory.current": "0",
			},
			as: noLimit,
			want: []MemoryLimit{
				{Bytes: gib, Source: "the cgroup memory limit (memory.max 1.00 GiB in /sys/fs/cgroup, of which 0 bytes is used)"},
			},
		},
		{
			name: "unlimited cgroup and unparsable files are left out",
			files: map[string]string{
				"/proc/meminfo":                 "MemAvailable: lots kB\n",
				"/proc/self/cgroup":             "0::/\n",
				"/proc/self/mountinfo":          v2mounts,
				"/sys/fs/cgroup/memory.max":     "max\n",
				"/sys/fs/cgroup/memory.current": "12345\n",
			},
			as:   noLimit,
			want: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &MemoryProbe{ReadFile: fakeFiles(tc.files), AddressSpaceLimit: tc.as}
			if got := p.Limits(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestProcField(t *testing.T) {
	tests := []struct {
		data, name string
		want       int64
		ok         bool
	}{
		{"MemAvailable:   1024 kB\n", "MemAvailable:", 1 << 20, true},
		{"VmSize:\t  5 kB\n", "VmSize:", 5 << 10, true},
		{"Count: 42\n", "Count:", 42, true},
		{"MemAvailable: 1 GB\n", "MemAvailable:", 0, false},
		{"MemAvailable: -3 kB\n", "MemAvailable:", 0, false},
		{"MemFree: 1 kB\n", "MemAvailable:", 0, false},
	}
	for _, tc := range tests {
		if got, ok := procField([]byte(tc.data), tc.name); got != tc.want || ok != tc.ok {
			t.Errorf("procField(%q, %q) = %d, %v; want %d, %v", tc.data, tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{512, "512 bytes"},
		{3 << 10, "3 KiB"},
		{300 * mib, "300 MiB"},
		{3*gib + 820*mib, "3.80 GiB"},
		{73 * gib, "73.0 GiB"},
		{3 << 40, "3.0 TiB"},
		{-2 * mib, "-2 MiB"},
	}
	for _, tc := range tests {
		if got := formatBytes(tc.n); got != tc.want {
			t.Errorf("formatBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
