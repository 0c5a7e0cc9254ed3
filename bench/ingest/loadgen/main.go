// Command loadgen drives Retain's ingest with Segment-style tracking calls and reports
// throughput and latency as one JSON object on stdout.
//
// Two modes:
//   - closed: -conns connections each send the next request as soon as the previous one is
//     answered; measures the highest sustained throughput.
//   - open: requests are scheduled at a fixed -rate whatever the server does, and latency is
//     measured from each request's scheduled time, so a stalled server shows up in the
//     percentiles instead of silently lowering the offered load (no coordinated omission).
//
// Bodies are built once as templates; each request copies one and writes a fresh sequence
// number into every messageId, so every event the run sends is distinct.
//
// Standard library only: `go build` needs no module downloads.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// seqPlaceholder marks where a request's sequence number goes in a template (12 hex digits).
const seqPlaceholder = "~~~~~~~~~~~~"

var successBody = []byte(`{"success":true}`)

type template struct {
	path    string
	body    []byte
	offsets []int // where seqPlaceholder occurs in body
	events  int
}

// render returns the template's body with seq written into every messageId.
func (t *template) render(seq uint64) []byte {
	out := make([]byte, len(t.body))
	copy(out, t.body)
	var digits [12]byte
	hexSeq := strconv.FormatUint(seq, 16)
	for i := range digits {
		digits[i] = '0'
	}
	copy(digits[12-len(hexSeq):], hexSeq)
	for _, offset := range t.offsets {
		copy(out[offset:], digits[:])
	}
	return out
}

func newTemplate(path string, body map[string]any, events int) *template {
	encoded, err := json.Marshal(body)
	if err != nil {
		panic(err)
	}
	var offsets []int
	for start := 0; ; {
		i := bytes.Index(encoded[start:], []byte(seqPlaceholder))
		if i < 0 {
			break
		}
		offsets = append(offsets, start+i)
		start += i + len(seqPlaceholder)
	}
	return &template{path: path, body: encoded, offsets: offsets, events: events}
}

// ---------------------------------------------------------------- realistic payloads

var (
	categories = []string{"Shoes", "Outerwear", "Accessories", "Knitwear", "Bags"}
	brands     = []string{"Northwind", "Fjell", "Alder & Co", "Kestrel"}
	pages      = []struct{ path, title, name string }{
		{"/", "Home | Example Store", "Home"},
		{"/collections/shoes", "Shoes | Example Store", "Collection"},
		{"/products/trail-runner-2", "Trail Runner 2 | Example Store", "Product"},
		{"/cart", "Your cart | Example Store", "Cart"},
		{"/blog/care-for-wool", "How to care for wool | Example Store", "Article"},
	}
	campaigns = []map[string]any{
		{"name": "spring_sale", "source": "newsletter", "medium": "email"},
		{"name": "brand", "source": "google", "medium": "cpc", "term": "trail shoes"},
		{"name": "ambassadors", "source": "instagram", "medium": "social"},
	}
)

type identity struct {
	userID      string // empty for an anonymous visitor
	anonymousID string
}

func identityFor(n int) identity {
	id := identity{anonymousID: fmt.Sprintf("anon-%08x-%04x", n*2654435761%4294967296, n%65536)}
	if n%3 != 0 { // two in three visitors are signed in
		id.userID = fmt.Sprintf("user-%06d", n)
	}
	return id
}

func product(n int) map[string]any {
	price := float64(1990+(n*731)%18000) / 100
	return map[string]any{
		"product_id": fmt.Sprintf("prod-%05d", n%5000),
		"sku":        fmt.Sprintf("SKU-%05d-%d", n%5000, n%4),
		"category":   categories[n%len(categories)],
		"name":       fmt.Sprintf("%s item %d", brands[n%len(brands)], n%5000),
		"brand":      brands[n%len(brands)],
		"variant":    []string{"S", "M", "L", "XL"}[n%4],
		"price":      price,
		"quantity":   1 + n%3,
		"url":        fmt.Sprintf("https://shop.example.com/products/prod-%05d", n%5000),
		"image_url":  fmt.Sprintf("https://cdn.example.com/img/prod-%05d.jpg", n%5000),
	}
}

// browserContext is what analytics.js attaches to every call from a browser.
func browserContext(n int, page map[string]any) map[string]any {
	return map[string]any{
		"library":   map[string]any{"name": "analytics.js", "version": "next-1.70.0"},
		"page":      page,
		"userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
		"ip":        fmt.Sprintf("203.0.113.%d", n%250+1),
		"locale":    "en-GB",
		"timezone":  "Europe/London",
		"campaign":  campaigns[n%len(campaigns)],
	}
}

func pageProps(n int) map[string]any {
	p := pages[n%len(pages)]
	return map[string]any{
		"path":     p.path,
		"referrer": "https://www.google.com/",
		"search":   "",
		"title":    p.title,
		"url":      "https://shop.example.com" + p.path,
	}
}

// event returns one event of the mix: half page views, then product views, cart adds and
// completed orders, the shape a storefront's traffic has.
func event(runID string, n, index int) (path string, body map[string]any) {
	who := identityFor(n)
	sentAt := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Millisecond)
	common := map[string]any{
		"messageId":         fmt.Sprintf("%s-%s-%03d", runID, seqPlaceholder, index),
		"anonymousId":       who.anonymousID,
		"originalTimestamp": sentAt.Add(-120 * time.Millisecond).Format(time.RFC3339Nano),
		"sentAt":            sentAt.Format(time.RFC3339Nano),
		"context":           browserContext(n, pageProps(n)),
		"integrations":      map[string]any{},
	}
	if who.userID != "" {
		common["userId"] = who.userID
	}
	switch n % 8 {
	case 0, 2, 4, 6:
		p := pages[n%len(pages)]
		common["type"] = "page"
		common["name"] = p.name
		common["properties"] = pageProps(n)
		return "/v1/page", common
	case 1, 5:
		props := product(n)
		props["currency"] = "GBP"
		props["value"] = props["price"]
		common["type"] = "track"
		common["event"] = "Product Viewed"
		common["properties"] = props
	case 3:
		props := product(n)
		props["cart_id"] = fmt.Sprintf("cart-%06d", n)
		common["type"] = "track"
		common["event"] = "Product Added"
		common["properties"] = props
	case 7:
		products := []map[string]any{product(n), product(n + 1), product(n + 2)}
		subtotal := 0.0
		for _, p := range products {
			subtotal += p["price"].(float64) * float64(p["quantity"].(int))
		}
		common["type"] = "track"
		common["event"] = "Order Completed"
		subtotal = cents(subtotal)
		common["properties"] = map[string]any{
			"order_id":    fmt.Sprintf("order-%08d", n),
			"checkout_id": fmt.Sprintf("chk-%08d", n),
			"affiliation": "Example Store",
			"subtotal":    subtotal,
			"shipping":    4.95,
			"tax":         cents(subtotal * 0.2),
			"discount":    0.0,
			"total":       cents(subtotal + 4.95),
			"revenue":     subtotal,
			"currency":    "GBP",
			"products":    products,
		}
	}
	return "/v1/track", common
}

func cents(amount float64) float64 { return math.Round(amount*100) / 100 }

func buildTemplates(runID, scenario string, batchSize, count int) []*template {
	templates := make([]*template, 0, count)
	for t := 0; t < count; t++ {
		if scenario == "single" {
			path, body := event(runID, t, 0)
			templates = append(templates, newTemplate(path, body, 1))
			continue
		}
		events := make([]map[string]any, batchSize)
		for i := range events {
			_, events[i] = event(runID, t*batchSize+i, i)
		}
		body := map[string]any{"batch": events, "sentAt": time.Now().UTC().Format(time.RFC3339Nano)}
		templates = append(templates, newTemplate("/v1/batch", body, batchSize))
	}
	return templates
}

// ---------------------------------------------------------------- measurement

type result struct {
	start, end time.Time
	latency    time.Duration
	status     int
	events     int // events the server reported accepted
	err        error
}

type summary struct {
	Scenario        string         `json:"scenario"`
	Mode            string         `json:"mode"`
	Conns           int            `json:"conns"`
	TargetRate      float64        `json:"target_rate,omitempty"`
	DurationSeconds float64        `json:"duration_seconds"`
	Requests        int            `json:"requests"`
	OKRequests      int            `json:"ok_requests"`
	Events          int            `json:"events"`
	RequestsPerSec  float64        `json:"requests_per_second"`
	EventsPerSec    float64        `json:"events_per_second"`
	Statuses        map[string]int `json:"statuses"`
	Errors          map[string]int `json:"errors,omitempty"`
	LatencyMS       map[string]any `json:"latency_ms"`
	// Everything accepted during warm-up and measurement: what must be on the topic.
	AcceptedEventsTotal int   `json:"accepted_events_total"`
	BodyBytesMean       int   `json:"body_bytes_mean"`
	LateStarts          int   `json:"late_starts,omitempty"`
	MaxScheduleLagMS    int64 `json:"max_schedule_lag_ms,omitempty"`
}

type client struct {
	http      *http.Client
	targets   []string
	auth      string
	templates []*template
}

func (c *client) send(ctx context.Context, target string, seq uint64) (int, int, error) {
	t := c.templates[seq%uint64(len(c.templates))]
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target+t.path, bytes.NewReader(t.render(seq)))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", c.auth)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, 0, nil
	}
	if bytes.Equal(body, successBody) {
		return resp.StatusCode, t.events, nil
	}
	// A batch with rejections: count only what the server accepted.
	var report struct {
		Accepted int `json:"accepted"`
	}
	if err := json.Unmarshal(body, &report); err != nil {
		return resp.StatusCode, 0, fmt.Errorf("unexpected response: %.200s", body)
	}
	return resp.StatusCode, report.Accepted, nil
}

func percentiles(latencies []time.Duration) map[string]any {
	out := map[string]any{}
	if len(latencies) == 0 {
		return out
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	at := func(q float64) float64 {
		i := int(q*float64(len(latencies))+0.5) - 1
		if i < 0 {
			i = 0
		}
		if i >= len(latencies) {
			i = len(latencies) - 1
		}
		return float64(latencies[i].Microseconds()) / 1000
	}
	var total time.Duration
	for _, l := range latencies {
		total += l
	}
	out["mean"] = float64(total.Microseconds()) / float64(len(latencies)) / 1000
	out["p50"] = at(0.50)
	out["p90"] = at(0.90)
	out["p99"] = at(0.99)
	out["p99.9"] = at(0.999)
	out["max"] = float64(latencies[len(latencies)-1].Microseconds()) / 1000
	return out
}

func summarise(results []result, s *summary, from, to time.Time) {
	s.Statuses = map[string]int{}
	s.Errors = map[string]int{}
	var latencies []time.Duration
	for _, r := range results {
		s.AcceptedEventsTotal += r.events
		// Closed mode counts what completed inside the window; open mode what was scheduled in it.
		if r.start.Before(from) || (s.Mode == "closed" && r.end.After(to)) {
			continue
		}
		s.Requests++
		if r.err != nil {
			s.Errors[shortError(r.err)]++
		} else {
			s.Statuses[strconv.Itoa(r.status)]++
		}
		if r.err == nil && r.status == http.StatusOK {
			s.OKRequests++
			s.Events += r.events
		}
		latencies = append(latencies, r.latency)
	}
	elapsed := to.Sub(from).Seconds()
	s.DurationSeconds = elapsed
	s.RequestsPerSec = float64(s.OKRequests) / elapsed
	s.EventsPerSec = float64(s.Events) / elapsed
	s.LatencyMS = percentiles(latencies)
	if len(s.Errors) == 0 {
		s.Errors = nil
	}
}

func shortError(err error) string {
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case strings.Contains(err.Error(), "connection refused"):
		return "connection refused"
	case strings.Contains(err.Error(), "reset by peer"):
		return "connection reset"
	default:
		return err.Error()
	}
}

// runClosed keeps conns requests in flight until the deadline.
func runClosed(c *client, conns int, warmup, duration time.Duration) ([]result, time.Time, time.Time) {
	from := time.Now().Add(warmup)
	to := from.Add(duration)
	var mu sync.Mutex
	var all []result
	var wg sync.WaitGroup
	var seq uint64
	var seqMu sync.Mutex
	next := func() uint64 {
		seqMu.Lock()
		defer seqMu.Unlock()
		seq++
		return seq
	}
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			target := c.targets[w%len(c.targets)]
			var mine []result
			for time.Now().Before(to) {
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				status, events, err := c.send(ctx, target, next())
				cancel()
				end := time.Now()
				mine = append(mine, result{start, end, end.Sub(start), status, events, err})
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	return all, from, to
}

// runOpen schedules requests at a constant rate; latency counts from the scheduled time.
func runOpen(c *client, conns int, rate float64, warmup, duration time.Duration, s *summary) ([]result, time.Time, time.Time) {
	interval := time.Duration(float64(time.Second) / rate)
	total := int((warmup + duration).Seconds() * rate)
	begin := time.Now().Add(50 * time.Millisecond)
	from := begin.Add(warmup)
	to := from.Add(duration)
	type job struct {
		seq       uint64
		scheduled time.Time
	}
	jobs := make(chan job, total)
	results := make([]result, total)
	var wg sync.WaitGroup
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			target := c.targets[w%len(c.targets)]
			for j := range jobs {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				status, events, err := c.send(ctx, target, j.seq)
				cancel()
				end := time.Now()
				results[j.seq] = result{j.scheduled, end, end.Sub(j.scheduled), status, events, err}
			}
		}(w)
	}
	var maxLag time.Duration
	for i := 0; i < total; i++ {
		scheduled := begin.Add(time.Duration(i) * interval)
		if wait := time.Until(scheduled); wait > 0 {
			time.Sleep(wait)
		} else if lag := -wait; lag > maxLag {
			maxLag = lag
		}
		jobs <- job{uint64(i), scheduled}
	}
	close(jobs)
	wg.Wait()
	s.MaxScheduleLagMS = maxLag.Milliseconds()
	return results, from, to
}

func main() {
	targets := flag.String("targets", "http://127.0.0.1:8080", "comma-separated ingest base URLs; connections are spread over them")
	writeKey := flag.String("write-key", "", "the source's write key (sent as HTTP Basic user)")
	scenario := flag.String("scenario", "single", "single (one event per POST) or batch")
	batchSize := flag.Int("batch-size", 100, "events per batch request")
	mode := flag.String("mode", "closed", "closed (max throughput) or open (fixed rate)")
	conns := flag.Int("conns", 32, "concurrent connections")
	rate := flag.Float64("rate", 1000, "requests per second in open mode")
	warmup := flag.Duration("warmup", 5*time.Second, "load before measuring starts")
	duration := flag.Duration("duration", 20*time.Second, "measured time")
	printBody := flag.Bool("print-body", false, "print one request body and exit")
	flag.Parse()
	if *printBody {
		t := buildTemplates("bench-sample", *scenario, *batchSize, 8)[7]
		fmt.Println(t.path)
		fmt.Println(string(t.render(1)))
		return
	}
	if *writeKey == "" || (*scenario != "single" && *scenario != "batch") || (*mode != "closed" && *mode != "open") {
		flag.Usage()
		os.Exit(2)
	}

	var raw [4]byte
	if _, err := rand.Read(raw[:]); err != nil {
		panic(err)
	}
	runID := "bench-" + hex.EncodeToString(raw[:])
	templates := buildTemplates(runID, *scenario, *batchSize, 512)
	totalBytes := 0
	for _, t := range templates {
		totalBytes += len(t.body)
	}
	c := &client{
		http: &http.Client{Transport: &http.Transport{
			MaxIdleConns:        *conns,
			MaxIdleConnsPerHost: *conns,
			MaxConnsPerHost:     *conns,
			DisableCompression:  true,
			IdleConnTimeout:     90 * time.Second,
		}},
		targets:   strings.Split(*targets, ","),
		auth:      "Basic " + base64.StdEncoding.EncodeToString([]byte(*writeKey+":")),
		templates: templates,
	}
	s := summary{Scenario: *scenario, Mode: *mode, Conns: *conns, BodyBytesMean: totalBytes / len(templates)}
	var results []result
	var from, to time.Time
	if *mode == "closed" {
		results, from, to = runClosed(c, *conns, *warmup, *duration)
	} else {
		s.TargetRate = *rate
		results, from, to = runOpen(c, *conns, *rate, *warmup, *duration, &s)
	}
	summarise(results, &s, from, to)
	out, _ := json.MarshalIndent(s, "", "  ")
	fmt.Println(string(out))
}
