using BenchmarkDotNet.Running;
using MetaCompute.Bench;

// dotnet run -c Release --project bench/MetaCompute.Bench -- <mode>
//   engine         BenchmarkDotNet: Decide and Offerings at 10k, 100k and 1M GPUs
//   latency        per-decision p50/p99 and decisions per second at the same sizes
//   fragmentation  best fit against first fit over a long random workload
//   churn          BenchmarkDotNet: a cancellation and a decision on a node that remembers 100 to 10,000 ended holds
var mode = args.FirstOrDefault() ?? "latency";
switch (mode)
{
    case "engine":
        BenchmarkRunner.Run<EngineBenchmarks>(args: args.Skip(1).ToArray());
        break;
    case "churn":
        BenchmarkRunner.Run<ChurnBenchmarks>(args: args.Skip(1).ToArray());
        break;
    case "latency":
        LatencyRun.Run([10_000, 100_000, 1_000_000], decisions: 5_000, searches: 200);
        break;
    case "fragmentation":
        FragmentationRun.Run(gpus: 4_096, steps: 24 * 30, seed: 42);
        break;
    default:
        Console.Error.WriteLine($"Unknown mode '{mode}'. Use engine, churn, latency or fragmentation.");
        return 1;
}

return 0;
