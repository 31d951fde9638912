//go:build linux && amd64 && !noasm

package mfac

import (
	"os"
	"strings"
	"testing"
)

// TestUseAsmFollowsCPU: the AVX2/FMA kernels are selected exactly when the
// kernel reports both flags for this CPU (/proc/cpuinfo), so that the
// assembly is what the other tests run on a machine that has them.
func TestUseAsmFollowsCPU(t *testing.T) {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Fatal(err)
	}
	var flags []string
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "flags" {
			flags = strings.Fields(v)
			break
		}
	}
	if flags == nil {
		t.Fatal("no flags line in /proc/cpuinfo")
	}
	has := func(f string) bool {
		for _, x := range flags {
			if x == f {
				return true
			}
		}
		return false
	}
	if want := has("avx2") && has("fma"); useAsm != want {
		t.Fatalf("useAsm = %v, but /proc/cpuinfo says avx2 %v, fma %v", useAsm, has("avx2"), has("fma"))
	}
}
