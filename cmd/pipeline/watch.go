package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/osprey-vision/osprey/sink/preview/whepclient"
)

// cmdWatch connects WebRTC viewers (WHEP, like the page) to a running
// pipeline's preview and reports what they receive: a load test for the
// preview on the device, and a way to check it from a shell.
func cmdWatch(ctx context.Context, args []string) int {
	return runWatch(ctx, args, os.Stdout, os.Stderr)
}

// watchSummary is what --json prints at the end.
type watchSummary struct {
	URL       string             `json:"url"`
	Stream    string             `json:"stream"`
	Seconds   float64            `json:"seconds"`
	Viewers   []whepclient.Stats `json:"viewers"`
	MinFPS    float64            `json:"min_video_fps"`
	MeanKbps  float64            `json:"mean_kbps"`
	AllVideo  bool               `json:"all_received_video"`
	FirstWait float64            `json:"seconds_to_video"` // connect to every viewer having a frame
}

func runWatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		base, stream, token string
		n                   int
		duration, interval  time.Duration
		asJSON              bool
	)
	fs.StringVar(&base, "url", "http://127.0.0.1:8080", "the preview sink's address (sinks.preview.listen)")
	fs.StringVar(&stream, "stream", "", "stream to watch (default: the first the server lists)")
	fs.StringVar(&token, "token", "", "bearer token (sinks.preview.token)")
	fs.IntVar(&n, "viewers", 1, "how many viewers to connect (1-64)")
	fs.DurationVar(&duration, "duration", 0, "stop after this long (0: until interrupted)")
	fs.DurationVar(&interval, "interval", 2*time.Second, "how often to print what arrived")
	fs.BoolVar(&asJSON, "json", false, "print a JSON summary on stdout at the end")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pipeline watch [--url http://127.0.0.1:8080] [--stream S] [--viewers N] [--duration D] [--token T] [--json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pipeline watch: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if n < 1 || n > 64 {
		fmt.Fprintf(stderr, "pipeline watch: --viewers %d: use 1 to 64\n", n)
		return 2
	}
	if interval <= 0 {
		interval = 2 * time.Second
	}
	base = strings.TrimSuffix(base, "/")
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	if stream == "" {
		s, err := firstStream(ctx, base, token)
		if err != nil {
			fmt.Fprintf(stderr, "pipeline watch: %v\n", err)
			return 1
		}
		stream = s
	}

	start := time.Now()
	viewers := make([]*whepclient.Viewer, 0, n)
	defer func() {
		for _, v := range viewers {
			_ = v.Close()
		}
	}()
	for range n {
		v, err := whepclient.Dial(ctx, base, stream, whepclient.Options{Token: token})
		if err != nil {
			fmt.Fprintf(stderr, "pipeline watch: %v\n", err)
			return 1
		}
		viewers = append(viewers, v)
	}
	fmt.Fprintf(stderr, "pipeline watch: %d viewer(s) on %s stream %q\n", n, base, stream)

	var firstWait time.Duration
	tick := time.NewTicker(interval)
	defer tick.Stop()
	poll := time.NewTicker(10 * time.Millisecond) // until every viewer has video
	defer poll.Stop()
	prev := make([]whepclient.Stats, n)
	prevAt := start
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-poll.C:
			if allVideo(stats(viewers)) {
				firstWait = now.Sub(start)
				fmt.Fprintf(stderr, "pipeline watch: every viewer has video after %v\n", firstWait.Round(time.Millisecond))
				poll.Stop()
			}
		case now := <-tick.C:
			cur := stats(viewers)
			fmt.Fprintln(stderr, rateLine(prev, cur, now.Sub(prevAt)))
			prev, prevAt = cur, now
		}
	}
	elapsed := time.Since(start)
	cur := stats(viewers)
	sum := watchSummary{URL: base, Stream: stream, Seconds: elapsed.Seconds(), Viewers: cur, AllVideo: allVideo(cur), FirstWait: firstWait.Seconds()}
	for i, s := range cur {
		fps := float64(s.Frames) / elapsed.Seconds()
		if i == 0 || fps < sum.MinFPS {
			sum.MinFPS = fps
		}
		sum.MeanKbps += float64(s.Bytes) * 8 / 1000 / elapsed.Seconds() / float64(n)
	}
	if asJSON {
		b, _ := json.Marshal(sum)
		fmt.Fprintln(stdout, string(b))
	} else {
		fmt.Fprintf(stdout, "%d viewer(s), %.1f s: video at least %.1f fps per viewer, %.0f kb/s each\n", n, sum.Seconds, sum.MinFPS, sum.MeanKbps)
	}
	if !sum.AllVideo {
		fmt.Fprintln(stderr, "pipeline watch: some viewers received no video: is the stream producing frames, and can UDP reach this host?")
		return 1
	}
	return 0
}

func stats(vs []*whepclient.Viewer) []whepclient.Stats {
	out := make([]whepclient.Stats, len(vs))
	for i, v := range vs {
		out[i] = v.Stats()
	}
	return out
}

func allVideo(st []whepclient.Stats) bool {
	for _, s := range st {
		if s.Frames == 0 {
			return false
		}
	}
	return true
}

// rateLine summarises the interval between two snapshots: video and
// metadata rates (the slowest viewer's and the mean) and bitrate.
func rateLine(prev, cur []whepclient.Stats, dt time.Duration) string {
	sec := dt.Seconds()
	minFPS, meanFPS, meta, kbps := -1.0, 0.0, 0.0, 0.0
	for i := range cur {
		fps := float64(cur[i].Frames-prev[i].Frames) / sec
		if minFPS < 0 || fps < minFPS {
			minFPS = fps
		}
		meanFPS += fps / float64(len(cur))
		meta += float64(cur[i].Meta-prev[i].Meta) / sec / float64(len(cur))
		kbps += float64(cur[i].Bytes-prev[i].Bytes) * 8 / 1000 / sec / float64(len(cur))
	}
	return fmt.Sprintf("video %.1f fps (slowest viewer %.1f), metadata %.1f msg/s, %.0f kb/s per viewer", meanFPS, minFPS, meta, kbps)
}

// firstStream asks the preview server which streams it has and returns the
// first, waiting (until ctx ends) for the pipeline's first frame to make one.
func firstStream(ctx context.Context, base, token string) (string, error) {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/streams", nil)
		if err != nil {
			return "", fmt.Errorf("%s: %w", base, err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", fmt.Errorf("GET %s/api/streams: %w (is the pipeline running with a preview sink on that address?)", base, err)
		}
		var list []struct {
			ID string `json:"id"`
		}
		err = json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&list)
		res.Body.Close()
		switch {
		case res.StatusCode == http.StatusUnauthorized:
			return "", fmt.Errorf("GET %s/api/streams: 401: pass the preview's token with --token", base)
		case res.StatusCode != http.StatusOK:
			return "", fmt.Errorf("GET %s/api/streams: %s", base, res.Status)
		case err != nil:
			return "", fmt.Errorf("GET %s/api/streams: %w", base, err)
		case len(list) > 0:
			return list[0].ID, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%s has no stream yet: no frame reached the preview", base)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
