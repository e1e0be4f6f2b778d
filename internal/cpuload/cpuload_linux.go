package cpuload

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// read parses the aggregate "cpu" line of /proc/stat: user nice system idle
// iowait irq softirq steal (guest time is already inside user and nice).
func read() (times, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return times{}, err
	}
	return parse(b)
}

func parse(b []byte) (times, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	sc := bufio.NewScanner(bytes.NewReader(line))
	sc.Split(bufio.ScanWords)
	if !sc.Scan() || sc.Text() != "cpu" {
		return times{}, fmt.Errorf("cpuload: /proc/stat does not start with the cpu line")
	}
	var t times
	// USER_HZ is 100 on every Linux ABI Go supports; only ratios are used.
	const tick = 10 * time.Millisecond
	for i := 0; i < 8 && sc.Scan(); i++ {
		v, err := strconv.ParseUint(sc.Text(), 10, 64)
		if err != nil {
			return times{}, fmt.Errorf("cpuload: /proc/stat field %d: %w", i+1, err)
		}
		d := time.Duration(v) * tick
		t.total += d
		if i != 3 && i != 4 { // idle, iowait
			t.busy += d
		}
	}
	return t, nil
}
