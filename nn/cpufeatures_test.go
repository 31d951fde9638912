//go:build linux && amd64 && !openblas && !purego

package nn

import (
	"os"
	"strings"
	"testing"
)

// TestKernelDispatchMatchesKernelFlags checks the kernel dispatch against
// the CPU flags Linux reports in /proc/cpuinfo, which list avx, fma and
// avx512f only when the CPU has them and the kernel saves their registers:
// the AVX/FMA kernels run exactly when avx and fma are listed, the AVX-512
// ones exactly when avx512f is listed as well.
func TestKernelDispatchMatchesKernelFlags(t *testing.T) {
	raw, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Skipf("no /proc/cpuinfo: %v", err)
	}
	var flags map[string]bool
	for _, line := range strings.Split(string(raw), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != "flags" {
			continue
		}
		flags = map[string]bool{}
		for _, f := range strings.Fields(value) {
			flags[f] = true
		}
		break
	}
	if flags == nil {
		t.Skip("/proc/cpuinfo lists no flags")
	}
	wantAVXFMA := flags["avx"] && flags["fma"]
	wantAVX512 := wantAVXFMA && flags["avx512f"]
	if haveSgemmKernel != wantAVXFMA {
		t.Errorf("haveSgemmKernel = %v, /proc/cpuinfo has avx %v, fma %v", haveSgemmKernel, flags["avx"], flags["fma"])
	}
	if haveAVX512 != wantAVX512 {
		t.Errorf("haveAVX512 = %v, /proc/cpuinfo has avx %v, fma %v, avx512f %v", haveAVX512, flags["avx"], flags["fma"], flags["avx512f"])
	}
}
