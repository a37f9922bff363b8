package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable prints the report for people: one table per phase.
func (r *Report) WriteTable(w io.Writer) error {
	m, s := r.Machine, r.Settings
	var b strings.Builder
	fmt.Fprintf(&b, "Parley benchmark, %s\n", r.Started.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "machine: %d CPUs (%s), %s %s, kernel %s, %s; load average %.2f before, %.2f after\n",
		m.CPUs, m.CPUModel, m.GoVersion, m.OS, m.Kernel, m.FileSystem, m.LoadBefore, m.LoadAfter)
	fmt.Fprintf(&b, "settings: %d parties, %d mediators, %d clients, %gs per measurement, checkpoint interval %gms\n",
		s.Parties, s.Mediators, s.Concurrency, s.DurationSeconds, s.CheckpointIntervalMS)
	for _, n := range s.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	if a := r.Acceptance; a != nil {
		fmt.Fprintf(&b, "\n1. Acceptance at one node (Submit until durable) vs bare gRPC mTLS echo, %d clients\n", a.Node.Concurrency)
		if a.Turns > 1 {
			fmt.Fprintf(&b, "(echo and node driven in turn, %d turns each of %.1f s, figures over all turns)\n", a.Turns, a.Echo.Seconds/float64(a.Turns))
		}
		tw := table(&b, "target\tops/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\terrors\tCPU s/1k ops\tpeak RSS MiB")
		for _, l := range []*Load{a.Echo, a.Node} {
			cpu, rss := "-", "-"
			if len(l.Processes) > 0 {
				cpu, rss = f3(l.Processes[0].CPUPer1000), f1(l.Processes[0].PeakRSSMiB)
			}
			fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", l.Target, l.Throughput, f2(l.Latency.P50), f2(l.Latency.P90), f2(l.Latency.P99), f2(l.Latency.Max), l.Errors, cpu, rss)
		}
		fmt.Fprintf(tw, "node ÷ echo\t%.3f\t%.1f\t\t%.1f\t\t\t%.1f\t%.1f\n", a.Ratios.Throughput, a.Ratios.P50, a.Ratios.P99, a.Ratios.CPUPer1000, a.Ratios.PeakRSS)
		tw.Flush()
		if a.Echo.Clients != nil && a.Node.Clients != nil {
			fmt.Fprintf(&b, "clients (the harness, the same code for both): CPU s/1k ops %s with the echo, %s with the node\n",
				f3(a.Echo.Clients.CPUPer1000), f3(a.Node.Clients.CPUPer1000))
		}
		if a.Echo.MachineBusy > 0 && a.Node.MachineBusy > 0 {
			fmt.Fprintf(&b, "machine's CPU busy (every process, /proc/stat): %.0f %% with the echo, %.0f %% with the node\n",
				100*a.Echo.MachineBusy, 100*a.Node.MachineBusy)
		}
		fmt.Fprintf(&b, "target: %s: %s\n", a.Target, metOrMissed(a.Met))
		for _, l := range []*Load{a.Echo, a.Node} {
			if l.FirstError != "" {
				fmt.Fprintf(&b, "first error (%s): %s\n", l.Target, l.FirstError)
			}
		}
	}
	if x := r.Exchange; x != nil {
		fmt.Fprintf(&b, "\n2. Fully exchanged among %d parties (held by every node, receipted by every counterpart)\n", x.Parties)
		if !x.Available {
			fmt.Fprintf(&b, "%s\n", x.Reason)
		} else {
			writeExchange(&b, x)
			fmt.Fprintf(&b, "target: %s: %s\n", x.Target, metOrMissed(x.Met))
		}
	}
	if i := r.Idle; i != nil {
		fmt.Fprintf(&b, "\n3. Idle network of %d parties, one notification at a time (%d samples)\n", i.Parties, i.Samples)
		tw := table(&b, "from Submit until\tp50 ms\tp90 ms\tp99 ms\tmax ms\ttarget\t")
		fmt.Fprintf(tw, "durable (Submit returns)\t%s\t%s\t%s\t%s\t\t\n", f2(i.Accepted.P50), f2(i.Accepted.P90), f2(i.Accepted.P99), f2(i.Accepted.Max))
		if l := i.Receipted; l != nil {
			fmt.Fprintf(tw, "sender holds every receipt\t%s\t%s\t%s\t%s\t%s\t%s\n", f2(l.P50), f2(l.P90), f2(l.P99), f2(l.Max), i.ReceiptTarget, metOrMissed(i.ReceiptMet))
		} else {
			fmt.Fprintf(tw, "sender holds every receipt\t-\t-\t-\t-\t%s\t-\n", i.ReceiptTarget)
		}
		l := i.Published
		fmt.Fprintf(tw, "in a witnessed checkpoint\t%s\t%s\t%s\t%s\t%s\t%s\n", f2(l.P50), f2(l.P90), f2(l.P99), f2(l.Max), i.PublishedTarget, metOrMissed(i.PublishedMet))
		tw.Flush()
		if i.Receipted == nil {
			fmt.Fprintf(&b, "receipts: %s\n", i.ReceiptReason)
		}
		fmt.Fprintf(&b, "(checkpoints polled every %gms)\n", i.PollMS)
	}
	if len(r.Scale) > 0 {
		fmt.Fprintf(&b, "\n4. Scaling: every node takes submissions, %d clients spread over the parties\n", r.Settings.Concurrency)
		tw := table(&b, "parties\taccepted/s\tsubmit p50 ms\tsubmit p99 ms\texchanged/s\texchange p50 ms\texchange p99 ms\tlog entries/notif\treceived/notif\treceipts/notif\tpeer msgs/notif\tnodes' CPU s/1k\tmax node RSS MiB")
		for _, x := range r.Scale {
			var cpu, rss float64
			for _, p := range x.Processes {
				if strings.HasPrefix(p.Name, "node ") {
					cpu += p.CPUPer1000
					rss = max(rss, p.PeakRSSMiB)
				}
			}
			ex, p50, p99 := "n/a", "n/a", "n/a"
			if x.Available {
				ex, p50, p99 = fmt.Sprintf("%.0f", x.ExchangedPerSecond), f2(x.Latency.P50), f2(x.Latency.P99)
			}
			var sub Load
			if x.Submit != nil {
				sub = *x.Submit
			}
			fmt.Fprintf(tw, "%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t%.3f\t%.2f\t%s\t%s\n", x.Parties, sub.Throughput, f2(sub.Latency.P50), f2(sub.Latency.P99),
				ex, p50, p99, x.Messages.EntriesPerNotification, x.Messages.DeliveriesPerNotification, x.Messages.ReceiptsPerNotification,
				x.Messages.PeerMessagesPerNotification, f3(cpu), f1(rss))
		}
		tw.Flush()
		if x := r.Scale[0]; !x.Available {
			fmt.Fprintf(&b, "exchange: %s\n", x.Reason)
		}
	}
	if x := r.Restart; x != nil {
		fmt.Fprintf(&b, "\n5. One node with a log of %d entries (filled in %.0fs by %d clients, %d errors)\n", x.Entries, x.FillSeconds, x.FillConcurrency, x.FillErrors)
		tw := table(&b, "figure\tvalue\ttarget\t")
		fmt.Fprintf(tw, "peak RSS while filling (sustained load)\t%.1f MiB\t%s\t\n", x.FilledRSSMiB, x.RSSTarget)
		fmt.Fprintf(tw, "start-up until serving (reconcile included)\t%.2f s\t%s\t%s\n", x.StartSeconds, x.StartTarget, metOrMissed(x.StartMet))
		fmt.Fprintf(tw, "peak RSS after start-up\t%.1f MiB\t%s\t\n", x.StartedRSSMiB, x.RSSTarget)
		if l := x.Load; l != nil && len(l.Processes) > 0 {
			fmt.Fprintf(tw, "then under load: %.0f ops/s, p50 %s ms, p99 %s ms; peak RSS\t%.1f MiB\t%s\t%s\n", l.Throughput, f2(l.Latency.P50), f2(l.Latency.P99), l.Processes[0].PeakRSSMiB, x.RSSTarget, metOrMissed(x.RSSMet))
		}
		for _, l := range []struct {
			f    *FindingsCost
			what string
		}{
			{x.Findings, "then ListFindings over the whole log"},
			{x.FindingsLater, "then the same as of 2 h later (receipts overdue)"},
		} {
			f := l.f
			if f == nil {
				continue
			}
			what := fmt.Sprintf("%s: %d findings in %.1f s; peak RSS", l.what, f.Count, f.Seconds)
			if f.Error != "" {
				what = fmt.Sprintf("%s failed after %.1f s (%s); peak RSS", l.what, f.Seconds, f.Error)
			}
			fmt.Fprintf(tw, "%s\t%.1f MiB\t%s\t%s\n", what, f.PeakRSSMiB, x.RSSTarget, metOrMissed(f.RSSMet))
		}
		if x.MediatorRSSMiB > 0 {
			what := fmt.Sprintf("mediator, mirroring the log, then asked for an audit of all of it (%.1f s): peak RSS", x.MediatorAuditSeconds)
			if x.MediatorAuditError != "" {
				what = fmt.Sprintf("mediator, mirroring the log (the audit asked for failed: %s): peak RSS", x.MediatorAuditError)
			}
			fmt.Fprintf(tw, "%s\t%.1f MiB\t\t\n", what, x.MediatorRSSMiB)
		}
		tw.Flush()
	}
	if h := r.Harness; h != nil {
		fmt.Fprintf(&b, "\nharness process (clients): %.1f CPU s over the run, peak RSS %.1f MiB\n", h.CPUSeconds, h.PeakRSSMiB)
	}
	for _, p := range r.Profiles {
		fmt.Fprintf(&b, "CPU profile: %s\n", p)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeExchange(b *strings.Builder, x *Exchange) {
	sub := x.Submit
	tw := table(b, "submitted/s\texchanged/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\tbacklog\tdrain s")
	fmt.Fprintf(tw, "%.0f\t%.0f\t%s\t%s\t%s\t%s\t%d\t%.1f\n", sub.Throughput, x.ExchangedPerSecond,
		f2(x.Latency.P50), f2(x.Latency.P90), f2(x.Latency.P99), f2(x.Latency.Max), x.Backlog, x.DrainSeconds)
	tw.Flush()
	m := x.Messages
	tw = table(b, "per notification:\tlog entries\tentries received from peers\treceipts\tacks/receipt\tpeer gRPC messages\tDeliver messages")
	fmt.Fprintf(tw, "\t%.2f\t%.2f\t%.3f\t%.1f\t%.2f\t%.2f\n", m.EntriesPerNotification, m.DeliveriesPerNotification,
		m.ReceiptsPerNotification, m.AcksPerReceipt, m.PeerMessagesPerNotification, m.DeliveredPerNotification)
	tw.Flush()
	tw = table(b, "process\tCPU s\tCPU s/1k notifications\tpeak RSS MiB")
	for _, p := range x.Processes {
		fmt.Fprintf(tw, "%s\t%.1f\t%s\t%s\n", p.Name, p.CPUSeconds, f3(p.CPUPer1000), f1(p.PeakRSSMiB))
	}
	tw.Flush()
	fmt.Fprintf(b, "holding: %s; digest mismatches: %d; submit errors: %d\n", x.Holding, x.Mismatches, sub.Errors)
}

func table(w io.Writer, header string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	return tw
}

func metOrMissed(met bool) string {
	if met {
		return "met"
	}
	return "MISSED"
}

func f1(v float64) string { return fmt.Sprintf("%.1f", v) }
func f2(v float64) string { return fmt.Sprintf("%.2f", v) }
func f3(v float64) string { return fmt.Sprintf("%.3f", v) }
