using System.Diagnostics;
using MetaCompute.Scheduling;

namespace MetaCompute.Bench;

/// <summary>
/// Times every single decision (BenchmarkDotNet reports means and medians; a p99 needs each sample), for pools of
/// several sizes built the same way as <see cref="EngineBenchmarks"/>.
/// </summary>
public static class LatencyRun
{
    public static void Run(int[] sizes, int decisions, int searches)
    {
        Console.WriteLine("| GPUs | leases | decide p50 | decide p99 | decisions/s (1 core) | offerings p50 | offerings p99 | placed |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var gpus in sizes)
        {
            var pool = LoadedPool.Build(gpus, gpus * 2);
            var requests = LoadedPool.Requests(decisions);
            foreach (var r in requests.Take(200))
            {
                Allocator.Decide(pool, r); // warm-up
            }

            var decide = new double[decisions];
            var placed = 0;
            var total = Stopwatch.StartNew();
            for (var i = 0; i < decisions; i++)
            {
                var sw = Stopwatch.StartNew();
                placed += Allocator.Decide(pool, requests[i]).Placed ? 1 : 0;
                decide[i] = sw.Elapsed.TotalMilliseconds;
            }

            var perSecond = decisions / total.Elapsed.TotalSeconds;
            var offerings = new double[searches];
            for (var i = 0; i < searches; i++)
            {
                var r = requests[i];
                var sw = Stopwatch.StartNew();
                BookableWindows.Find(pool, new WindowSearch(r.GpuCount, r.End - r.Start, r.Start, r.Start.AddDays(7), r.SingleFabricIsland));
                offerings[i] = sw.Elapsed.TotalMilliseconds;
            }

            Console.WriteLine($"| {gpus:N0} | {pool.LeaseCount:N0} | {P(decide, 0.50):F3} ms | {P(decide, 0.99):F3} ms | {perSecond:N0} | " +
                              $"{P(offerings, 0.50):F2} ms | {P(offerings, 0.99):F2} ms | {100.0 * placed / decisions:F0} % |");
        }
    }

    private static double P(double[] samples, double q)
    {
        var sorted = samples.Order().ToArray();
        return sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
    }
}
