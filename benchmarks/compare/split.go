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
