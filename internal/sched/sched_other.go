//go:build !linux

package sched

func onMainThread() bool { return false }

// Apply returns ErrUnsupported unless p changes nothing.
func Apply(p Policy) error {
	if p.IsZero() {
		return nil
	}
	return ErrUnsupported
}

// Allowed returns ErrUnsupported.
func Allowed() (CPUs, error) { return nil, ErrUnsupported }

// Thread returns ErrUnsupported.
func Thread(int) (Info, error) { return Info{}, ErrUnsupported }

// Threads returns ErrUnsupported.
func Threads() ([]Info, error) { return nil, ErrUnsupported }

// TID returns 0.
func TID() int { return 0 }

func setName(string) error { return nil }
