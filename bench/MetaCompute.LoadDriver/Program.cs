using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;

// An HTTP load driver: each of N connections books a reservation (with its own Idempotency-Key), then cancels it,
// for a fixed time, against a loopback MetaCompute. The same workload runs first for a warm-up that is not counted:
// a fresh process spends its first seconds compiling (tiered JIT), which is not the service's steady rate. It also
// reports how busy the machine's cores were over the timed run (Linux). Usage:
//   MetaCompute.LoadDriver <baseUrl> <apiKey> <poolId> [connections=32] [seconds=60] [gpuCount=1] [warmupSeconds=20]
if (args.Length < 3)
{
    Console.Error.WriteLine("usage: MetaCompute.LoadDriver <baseUrl> <apiKey> <poolId> [connections] [seconds] [gpuCount] [warmupSeconds]");
    return 2;
}

var baseUrl = new Uri(args[0]);
if (!baseUrl.IsLoopback)
{
    Console.Error.WriteLine("The load driver only targets loopback addresses.");
    return 2;
}

var key = args[1];
var pool = args[2];
var connections = args.Length > 3 ? int.Parse(args[3]) : 32;
var seconds = args.Length > 4 ? int.Parse(args[4]) : 60;
var gpuCount = args.Length > 5 ? int.Parse(args[5]) : 1;
var warmupSeconds = args.Length > 6 ? int.Parse(args[6]) : 20;

using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = connections, PooledConnectionLifetime = TimeSpan.FromMinutes(10) };
using var http = new HttpClient(handler) { BaseAddress = baseUrl, Timeout = TimeSpan.FromSeconds(30) };
http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);

// Answers during the warm-up are not timed, but a server error there still counts as one.
var warmupStatuses = new Dictionary<int, int>[connections];
if (warmupSeconds > 0)
{
    await RunAsync(TimeSpan.FromSeconds(warmupSeconds), new List<double>[connections], warmupStatuses);
}

var bookLatencies = new List<double>[connections];
var statuses = new Dictionary<int, int>[connections];
var cpuBefore = CpuTimes();
var clock = Stopwatch.StartNew();
await RunAsync(TimeSpan.FromSeconds(seconds), bookLatencies, statuses);
var wall = clock.Elapsed.TotalSeconds;
var cpuBusy = CpuBusyShare(cpuBefore, CpuTimes());

var all = bookLatencies.SelectMany(l => l).Order().ToArray();
var warmupErrors = warmupStatuses.Where(s => s is not null).SelectMany(s => s).Where(kv => kv.Key >= 500).Sum(kv => kv.Value);
var byStatus = statuses.SelectMany(s => s).GroupBy(kv => kv.Key).ToDictionary(g => g.Key, g => g.Sum(kv => kv.Value));
Console.WriteLine($"connections={connections} seconds={wall:F1} reservations={all.Length} reservations_per_second={all.Length / wall:F1} " +
                  $"book_p50_ms={P(0.50):F2} book_p99_ms={P(0.99):F2} " +
                  $"status_counts={string.Join(',', byStatus.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}:{kv.Value}"))} " +
                  $"server_errors={byStatus.Where(kv => kv.Key >= 500).Sum(kv => kv.Value)} warmup_seconds={warmupSeconds} warmup_server_errors={warmupErrors}" +
                  (cpuBusy is { } busy ? $" cpu_busy={100 * busy:F1}%" : ""));
return 0;

async Task RunAsync(TimeSpan length, List<double>[] bookLatencies, Dictionary<int, int>[] statuses)
{
    using var stop = new CancellationTokenSource(length);
    await Task.WhenAll(Enumerable.Range(0, connections).Select(async w =>
    {
        bookLatencies[w] = [];
        statuses[w] = [];
        while (!stop.IsCancellationRequested)
        {
            var sw = Stopwatch.StartNew();
            var book = await SendAsync("/v1/reservations", new { poolId = pool, gpuCount, durationHours = 1 });
            var elapsed = sw.Elapsed.TotalMilliseconds;
            Count(statuses[w], book.StatusCode);
            if (book.StatusCode == HttpStatusCode.Created)
            {
                bookLatencies[w].Add(elapsed);
                var id = JsonDocument.Parse(await book.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString();
                var cancel = await SendAsync($"/v1/reservations/{id}/cancel", null);
                Count(statuses[w], cancel.StatusCode);
            }
        }
    }));
}

// The machine's CPU time so far (all cores, in clock ticks) and the idle part of it, from Linux's /proc/stat; the
// share busy over the timed run says whether the machine or a wait set the rate.
static (long Total, long Idle)? CpuTimes()
{
    if (!File.Exists("/proc/stat"))
    {
        return null;
    }

    var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Take(8).Select(long.Parse).ToArray();
    // user nice system idle iowait irq softirq steal
    return (fields.Sum(), fields[3] + fields[4]);
}

static double? CpuBusyShare((long Total, long Idle)? before, (long Total, long Idle)? after) =>
    before is { } b && after is { } a && a.Total > b.Total ? 1 - (double)(a.Idle - b.Idle) / (a.Total - b.Total) : null;

double P(double q) => all.Length == 0 ? double.NaN : all[Math.Min(all.Length - 1, (int)Math.Ceiling(q * all.Length) - 1)];

static void Count(Dictionary<int, int> statuses, HttpStatusCode status) =>
    statuses[(int)status] = statuses.GetValueOrDefault((int)status) + 1;

async Task<HttpResponseMessage> SendAsync(string path, object? body)
{
    var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = body is null ? null : JsonContent.Create(body) };
    request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
    try
    {
        return await http.SendAsync(request, CancellationToken.None);
    }
    catch (HttpRequestException)
    {
        return new HttpResponseMessage(HttpStatusCode.ServiceUnavailable);
    }
}
