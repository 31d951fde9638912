//go:build linux

package nn

import (
	"fmt"
	"syscall"
	"testing"
)

func cpuNow3() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func TestTmpSmall(t *testing.T) {
	for _, st := range []struct{ c, hw int }{{16, 32}, {32, 16}, {64, 8}, {32, 12}, {64, 16}} {
		g, _ := newConvGeom([]int{128, st.c, st.hw, st.hw}, []int{st.c, st.c, 3, 3}, 1, 1)
		x := randKernelData(g.n * g.c * g.plen)
		w := randKernelData(g.o * g.ckk)
		y := make([]float32, g.n*g.o*g.pix)
		var s [4]any
		dx := make([]float32, len(x))
		names := []string{"eval-im2col-fwd", "implicit-fwd", "im2col-bwdX", "implicit-bwdX"}
		var tot [4][]int64
		for rep := 0; rep < 9; rep++ {
			for k := 0; k < 4; k++ {
				t0 := cpuNow3()
				switch k {
				case 0:
					convFwd(&g, &s[0], joinShare(nil), true, x, w, nil, y)
				case 1:
					convFwdImplicit(&g, &s[1], x, w, nil, y)
				case 2:
					convBwdX(&g, &s[2], y, w, dx)
				case 3:
					convBwdXImplicit(&g, &s[3], y, w, dx)
				}
				if rep > 0 {
					tot[k] = append(tot[k], cpuNow3()-t0)
				}
			}
		}
		fmt.Printf("c=%d hw=%d fwd im2col %.2f implicit %.2f (%.2f); bwdX im2col %.2f implicit %.2f (%.2f)\n", st.c, st.hw,
			med(tot[0])/1e6, med(tot[1])/1e6, med(tot[1])/med(tot[0]), med(tot[2])/1e6, med(tot[3])/1e6, med(tot[3])/med(tot[2]))
		_ = names
	}
}

func med(v []int64) float64 {
	s := append([]int64{}, v...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return float64(s[len(s)/2])
}
