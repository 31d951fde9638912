package compare

import (
	"fmt"

	"github.com/curvopt/curvopt/data"
)

// SplitTail splits ds deterministically into a training part (the first
// images) and a validation part (the last ⌈frac·Len⌉ images), both copies:
// modifying either leaves ds unchanged. frac must be in (0, 1) and both parts
// non-empty. The names get "/train-part" and "/val" suffixes.
func SplitTail(ds *data.Dataset, frac float64) (train, val *data.Dataset, err error) {
	if ds == nil {
		return nil, nil, fmt.Errorf("compare: split: nil dataset")
	}
	if !(frac > 0 && frac < 1) {
		return nil, nil, fmt.Errorf("compare: split %s: validation fraction %v: want 0 < frac < 1", ds.Name, frac)
	}
	n := ds.Len()
	nv := int(float64(n)*frac + 0.999999)
	if nv < 1 || nv >= n {
		return nil, nil, fmt.Errorf("compare: split %s: %d images give %d validation images: both parts must be non-empty", ds.Name, n, nv)
	}
	nt := n - nv
	sz := ds.ImageSize()
	if len(ds.Pixels) != n*sz {
		return nil, nil, fmt.Errorf("compare: split %s: %d pixel bytes for %d images of %d", ds.Name, len(ds.Pixels), n, sz)
	}
	part := func(name string, lo, hi int) *data.Dataset {
		return &data.Dataset{
			Name: ds.Name + name, Classes: ds.Classes, C: ds.C, H: ds.H, W: ds.W,
			Pixels: append([]uint8(nil), ds.Pixels[lo*sz:hi*sz]...),
			Labels: append([]int(nil), ds.Labels[lo:hi]...),
		}
	}
	return part("/train-part", 0, nt), part("/val", nt, n), nil
}

// Subsample returns a copy of n examples of ds taken at evenly spaced
// indices ⌊i·Len/n⌋ (i = 0..n−1), so that a fixed, spread-out subset stands
// for the whole evaluation set (ds itself when n ≤ 0 or n ≥ Len). A
// comparison evaluating often uses it to keep evaluation cheap; every run
// sees the same subset.
func Subsample(ds *data.Dataset, n int) (*data.Dataset, error) {
	if ds == nil {
		return nil, fmt.Errorf("compare: subsample: nil dataset")
	}
	if n <= 0 || n >= ds.Len() {
		return ds, nil
	}
	sz := ds.ImageSize()
	if len(ds.Pixels) != ds.Len()*sz {
		return nil, fmt.Errorf("compare: subsample %s: %d pixel bytes for %d images of %d", ds.Name, len(ds.Pixels), ds.Len(), sz)
	}
	out := &data.Dataset{
		Name: fmt.Sprintf("%s/every-%.4g-th", ds.Name, float64(ds.Len())/float64(n)), Classes: ds.Classes, C: ds.C, H: ds.H, W: ds.W,
		Pixels: make([]uint8, 0, n*sz), Labels: make([]int, 0, n),
	}
	for i := 0; i < n; i++ {
		j := int(int64(i) * int64(ds.Len()) / int64(n))
		out.Pixels = append(out.Pixels, ds.Pixels[j*sz:(j+1)*sz]...)
		out.Labels = append(out.Labels, ds.Labels[j])
	}
	return out, nil
}
