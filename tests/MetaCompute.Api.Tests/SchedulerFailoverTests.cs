using System.Diagnostics;
using MetaCompute.Api.Data;
using MetaCompute.Api.Scheduling;
using MetaCompute.Api.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Tests;

/// <summary>Two real scheduler processes on one database: one leads; when it dies, the other takes over.</summary>
public sealed class SchedulerFailoverTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private const string LeaderLine = "This instance is the scheduler's leader";

    [Fact]
    public async Task When_the_leader_dies_a_standby_takes_over_within_15_seconds()
    {
        await using var first = SchedulerProcess.Start(api.ConnectionString);
        Assert.True(await first.WaitForAsync(LeaderLine, TimeSpan.FromSeconds(30)), "the first scheduler never led:\n" + first.Output);
        await using var second = SchedulerProcess.Start(api.ConnectionString);
        Assert.True(await second.WaitForAsync("Now listening", TimeSpan.FromSeconds(30)), "the standby never started:\n" + second.Output);
        // The leader lock is one PostgreSQL advisory lock: exactly one session holds it.
        Assert.Equal(1L, await api.ScalarAsync<long>("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = $1",
            (long)(uint)(SchedulerService.LeaderLockKey & 0xFFFFFFFF)));

        // A reservation that starts now is activated only by whoever leads after the kill.
        var tenant = await api.CreateTenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        first.Kill();
        var killedAt = Stopwatch.StartNew();
        var reservation = await (await client.ReserveAsync(new { poolId = "us-ohio-1-h100", gpuCount = 1, durationHours = 1 })).ReadReservationAsync();

        Assert.True(await second.WaitForAsync(LeaderLine, TimeSpan.FromSeconds(15)), "the standby did not take over:\n" + second.Output);
        Assert.True(await second.WaitForAsync("\"Activated\":1", TimeSpan.FromSeconds(15) - killedAt.Elapsed),
            "the new leader activated nothing:\n" + second.Output);
        Assert.True(killedAt.Elapsed < TimeSpan.FromSeconds(15), $"took over after {killedAt.Elapsed}");
        var id = Guid.Parse(reservation.Id);
        Assert.Equal(ReservationStatus.Active, await api.WithDbAsync(db => db.Reservations.Where(r => r.Id == id).Select(r => r.Status).SingleAsync()));
    }

    /// <summary>The built service run as its own process with <c>--role scheduler</c>, bound to a loopback port.</summary>
    private sealed class SchedulerProcess : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly List<string> _lines = [];
        private readonly List<(string Text, TaskCompletionSource Seen)> _waiters = [];

        private SchedulerProcess(Process process)
        {
            _process = process;
            _process.OutputDataReceived += (_, e) => Receive(e.Data);
            _process.ErrorDataReceived += (_, e) => Receive(e.Data);
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        public string Output
        {
            get
            {
                lock (_lines)
                {
                    return string.Join('\n', _lines);
                }
            }
        }

        public static SchedulerProcess Start(string connectionString)
        {
            var info = new ProcessStartInfo("dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = AppContext.BaseDirectory,
            };
            foreach (var arg in new[]
            {
                Path.Combine(AppContext.BaseDirectory, "MetaCompute.Api.dll"), "--role", "scheduler", "--urls", "http://127.0.0.1:0",
                "--ConnectionStrings:Postgres", connectionString, "--Scheduler:TickInterval", "00:00:01",
                "--Serilog:MinimumLevel:Default", "Information",
            })
            {
                info.ArgumentList.Add(arg);
            }

            info.Environment["ASPNETCORE_ENVIRONMENT"] = "Testing";
            return new SchedulerProcess(Process.Start(info) ?? throw new InvalidOperationException("Could not start the scheduler."));
        }

        /// <summary>Completes when the process prints a line containing <paramref name="text"/>, or false after the timeout.</summary>
        public async Task<bool> WaitForAsync(string text, TimeSpan timeout)
        {
            var seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_lines)
            {
                if (_lines.Any(l => l.Contains(text, StringComparison.Ordinal)))
                {
                    return true;
                }

                _waiters.Add((text, seen));
            }

            try
            {
                await seen.Task.WaitAsync(timeout > TimeSpan.Zero ? timeout : TimeSpan.Zero);
                return true;
            }
            catch (TimeoutException)
            {
                return false;
            }
        }

        private void Receive(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (_lines)
            {
                _lines.Add(line);
                foreach (var waiter in _waiters.Where(w => line.Contains(w.Text, StringComparison.Ordinal)).ToList())
                {
                    waiter.Seen.TrySetResult();
                    _waiters.Remove(waiter);
                }
            }
        }

        public void Kill()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit();
            }
        }

        public ValueTask DisposeAsync()
        {
            Kill();
            _process.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
