package data

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/curvopt/curvopt/internal/meminfo"
)

// SyntheticConfig configures the built-in synthetic dataset.
type SyntheticConfig struct {
	// Train and Test are the split sizes; zero means 5000 and 1000.
	Train, Test int
	// Seed selects the dataset; the same seed always yields the same bytes.
	Seed uint64
	// Noise is the standard deviation of the per-pixel Gaussian noise on the
	// [0, 1] scale; zero means 0.08, a negative value means no noise.
	Noise float64
}

// Synthetic image geometry and defaults.
const (
	SyntheticClasses = 10
	SyntheticSize    = 32
	defaultTrain     = 5000
	defaultTest      = 1000
	defaultNoise     = 0.08
)

// SyntheticClassNames names the synthetic classes, indexed by label.
var SyntheticClassNames = [SyntheticClasses]string{
	"disk", "square", "ring", "plus", "cross", "triangle",
	"grating-0", "grating-90", "grating-45", "checkerboard",
}

// Synthetic generates the built-in CIFAR-style dataset: 3×32×32 images in 10
// classes, with no download and deterministic in cfg.Seed.
//
// Generative process. Image i of a split (train = stream 0, test = stream 1)
// is drawn from its own PCG generator, seeded from (Seed, stream, i), so it
// does not depend on the other images, the split size or the number of
// goroutines generating it. Its label is i mod 10, so every class has
// ⌊n/10⌋ or ⌈n/10⌉ images. The image is
//
//   - a background of a uniformly random RGB colour plus a weak linear
//     gradient in a random direction (amplitude up to ±0.1 per channel);
//   - one foreground object of the class, painted in a random RGB colour whose
//     luminance differs from the background's by at least 0.3. The object has a
//     random centre (it may be cut off slightly at the border), a random
//     radius r of 6–11 pixels and a random rotation jitter;
//   - independent Gaussian noise (std cfg.Noise) on every channel of every
//     pixel, and quantisation to bytes.
//
// In object coordinates (u, v) = rotated offset from the centre / r the
// classes are: 0 disk (u²+v² ≤ 1); 1 square (|u|,|v| ≤ 0.8, rotation ±15°);
// 2 ring (0.55 ≤ √(u²+v²) ≤ 1); 3 plus (two bars of half-width 0.28,
// rotation ±15°); 4 cross (the plus turned by 45°, ±15°); 5 triangle (apex
// up, rotation ±20°); 6, 7, 8 a disk-shaped patch of a square-wave grating
// with period 3.5–5 pixels and random phase whose stripes run at 0°, 90° and
// 45° (each ±12°); 9 a checkerboard patch (|u|,|v| ≤ 0.9, cells of 3–4
// pixels, rotation ±15°).
//
// Class separability by design: colour, brightness, position and scale are
// random and shared by all classes, so class identity is carried only by
// local shape and orientation structure at a random place in the image.
// Translation-invariant convolutional features with pooling (edges,
// corners, bar ends, oriented stripes) identify it, while a linear model or
// MLP on raw pixels has to learn every position separately and sees mostly
// colour variation, so it does clearly worse. The hardest pairs are disk /
// ring at small radii, square / checkerboard and plus / cross near the ends
// of their rotation ranges.
//
// The split sizes are checked before anything is allocated: at most
// MaxSyntheticImages each, and their bytes against the memory available
// (MemAvailable), so a size such as 1e12 is an error, not a crash.
func Synthetic(cfg SyntheticConfig) (train, test *Dataset, err error) {
	return synthetic(cfg, nil)
}

// MaxSyntheticImages bounds each synthetic split (2^24 images, 51.5 GB of
// pixels): larger sizes are refused before the memory check.
const MaxSyntheticImages = 1 << 24

// syntheticImageBytes is the memory one synthetic image takes: its pixels
// and its label.
const syntheticImageBytes = SyntheticSize*SyntheticSize*3 + 8

func synthetic(cfg SyntheticConfig, mem meminfo.Source) (train, test *Dataset, err error) {
	if cfg.Train < 0 || cfg.Test < 0 {
		return nil, nil, fmt.Errorf("data: synthetic: negative split size (train %d, test %d)", cfg.Train, cfg.Test)
	}
	if cfg.Train == 0 {
		cfg.Train = defaultTrain
	}
	if cfg.Test == 0 {
		cfg.Test = defaultTest
	}
	if cfg.Train > MaxSyntheticImages || cfg.Test > MaxSyntheticImages {
		return nil, nil, fmt.Errorf("data: synthetic: split sizes train %d, test %d: at most %d images each", cfg.Train, cfg.Test, MaxSyntheticImages)
	}
	n := int64(cfg.Train) + int64(cfg.Test)
	if err := mem.Check(fmt.Sprintf("generating %d synthetic images", n), n*syntheticImageBytes, "lower the split sizes"); err != nil {
		return nil, nil, fmt.Errorf("data: %w", err)
	}
	noise := cfg.Noise
	switch {
	case noise == 0:
		noise = defaultNoise
	case noise < 0:
		noise = 0
	case math.IsNaN(noise) || math.IsInf(noise, 0):
		return nil, nil, fmt.Errorf("data: synthetic: invalid noise %v", cfg.Noise)
	}
	train = generateSynthetic("synthetic/train", cfg.Train, cfg.Seed, 0, noise)
	test = generateSynthetic("synthetic/test", cfg.Test, cfg.Seed, 1, noise)
	return train, test, nil
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func generateSynthetic(name string, n int, seed, stream uint64, noise float64) *Dataset {
	const size = SyntheticSize * SyntheticSize * 3
	d := &Dataset{Name: name, Classes: SyntheticClasses, C: 3, H: SyntheticSize, W: SyntheticSize,
		Pixels: make([]uint8, n*size), Labels: make([]int, n)}
	workers := min(runtime.GOMAXPROCS(0), max(1, n/64))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		lo, hi := n*w/workers, n*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			pcg := rand.NewPCG(0, 0)
			rng := rand.New(pcg)
			for i := lo; i < hi; i++ {
				s1 := splitmix64(seed ^ 0x5a17_3e11_c0ff_ee00)
				s2 := splitmix64(uint64(i) ^ stream<<56 ^ splitmix64(seed))
				pcg.Seed(s1, s2)
				label := i % SyntheticClasses
				d.Labels[i] = label
				renderSynthetic(d.Pixels[i*size:(i+1)*size], label, rng, noise)
			}
		}()
	}
	wg.Wait()
	return d
}

func luminance(c [3]float64) float64 { return 0.299*c[0] + 0.587*c[1] + 0.114*c[2] }

// renderSynthetic draws one image of the given class into dst (3×32×32).
func renderSynthetic(dst []uint8, label int, rng *rand.Rand, noise float64) {
	const S = SyntheticSize
	var fg, bg [3]float64
	for {
		for c := range 3 {
			fg[c], bg[c] = rng.Float64(), rng.Float64()
		}
		if math.Abs(luminance(fg)-luminance(bg)) >= 0.3 {
			break
		}
	}
	var grad [3]float64
	ga := rng.Float64() * 2 * math.Pi
	gx, gy := math.Cos(ga)/S, math.Sin(ga)/S
	for c := range 3 {
		grad[c] = (rng.Float64()*2 - 1) * 0.2
	}
	r := 6 + rng.Float64()*5
	lo, span := 0.8*r, S-1.6*r
	cx, cy := lo+rng.Float64()*span, lo+rng.Float64()*span
	jit := func(deg float64) float64 { return (rng.Float64()*2 - 1) * deg * math.Pi / 180 }
	var theta float64
	switch label {
	case 0, 2:
		theta = rng.Float64() * 2 * math.Pi
	case 1, 3, 9:
		theta = jit(15)
	case 4:
		theta = math.Pi/4 + jit(15)
	case 5:
		theta = jit(20)
	case 6:
		theta = jit(12)
	case 7:
		theta = math.Pi/2 + jit(12)
	case 8:
		theta = math.Pi/4 + jit(12)
	}
	period := 3.5 + rng.Float64()*1.5
	phase := rng.Float64()
	cell := 3 + rng.Float64()
	cos, sin := math.Cos(theta), math.Sin(theta)
	inv := 1 / r
	plane := S * S
	for y := 0; y < S; y++ {
		dy := float64(y) + 0.5 - cy
		for x := 0; x < S; x++ {
			dx := float64(x) + 0.5 - cx
			// Pixel-unit coordinates in the object's frame.
			pu := cos*dx + sin*dy
			pv := -sin*dx + cos*dy
			u, v := pu*inv, pv*inv
			on := false
			switch label {
			case 0:
				on = u*u+v*v <= 1
			case 1:
				on = math.Abs(u) <= 0.8 && math.Abs(v) <= 0.8
			case 2:
				rr := u*u + v*v
				on = rr <= 1 && rr >= 0.55*0.55
			case 3, 4:
				au, av := math.Abs(u), math.Abs(v)
				on = (au <= 0.28 && av <= 1) || (av <= 0.28 && au <= 1)
			case 5:
				on = v <= 0.6 && v >= 1.75*math.Abs(u)-1
			case 6, 7, 8:
				if u*u+v*v <= 1 {
					t := pv/period + phase
					on = t-math.Floor(t) < 0.5
				}
			case 9:
				if math.Abs(u) <= 0.9 && math.Abs(v) <= 0.9 {
					on = (int(math.Floor(pu/cell))+int(math.Floor(pv/cell)))&1 == 0
				}
			}
			g := (float64(x)-S/2)*gx + (float64(y)-S/2)*gy
			p := y*S + x
			for c := range 3 {
				val := bg[c] + grad[c]*g
				if on {
					val = fg[c]
				}
				if noise > 0 {
					val += rng.NormFloat64() * noise
				}
				dst[c*plane+p] = toByte(val)
			}
		}
	}
}

func toByte(v float64) uint8 {
	v = v*255 + 0.5
	if v <= 0 {
		return 0
	}
	if v >= 255 {
		return 255
	}
	return uint8(v)
}
