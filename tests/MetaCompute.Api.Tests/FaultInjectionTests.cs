using System.Net.Http.Json;
using MetaCompute.Api.Data;
using MetaCompute.Api.Scheduling;
using MetaCompute.Api.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MetaCompute.Api.Tests;

/// <summary>The fault model wired into the scheduler's tick, driven at chosen times; the class's database is its own.</summary>
public sealed class FaultInjectionTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    [Fact]
    public async Task Faults_fail_nodes_whose_leases_move_or_degrade_and_repairs_bring_them_back_when_due()
    {
        var tenant = await api.CreateTenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        foreach (var poolId in new[] { "us-ohio-1-h100", "eu-dublin-1-mi300x" })
        {
            for (var i = 0; i < 6; i++)
            {
                await (await client.ReserveAsync(new { poolId, gpuCount = 8, durationHours = 4 })).ReadReservationAsync();
            }
        }

        // 8,640 simulated seconds per real one: ten minutes are 60 days, when the test fleet expects about 29 faults;
        // the longest repair (a day) takes 10 s.
        var log = new FirstStartTests.LogCollector();
        using var loggers = LoggerFactory.Create(logging => logging.AddProvider(log));
        var injector = new FaultInjector(Options.Create(new FaultOptions { Enabled = true, Seed = 3, TimeScale = 8_640 }),
            api.Services.GetRequiredService<PoolOccupancyCache>(), loggers.CreateLogger<FaultInjector>());
        var start = DateTimeOffset.UtcNow;
        async Task<FaultInjector.Result> TickAsync(DateTimeOffset now)
        {
            await using var scope = api.Services.CreateAsyncScope();
            return await injector.TickAsync(scope.ServiceProvider.GetRequiredService<MetaComputeDbContext>(), now, CancellationToken.None);
        }

        Assert.Equal(new FaultInjector.Result(0, 0), await TickAsync(start));
        var afterFaults = start.AddMinutes(10);
        var failed = (await TickAsync(afterFaults)).Failed;

        Assert.InRange(failed, 10, 60);
        // Each failure is logged naming its node, its cause and when its repair is due.
        var failures = log.Entries.Select(e => e.Message).Where(m => m.StartsWith("Fault model: node ", StringComparison.Ordinal) && m.Contains(" failed (")).ToList();
        Assert.Equal(failed, failures.Count);
        Assert.All(failures, line => Assert.Matches(@"^Fault model: node \d+ failed \(.+, .+\); repair due .+, in [\d.]+ min$", line));
        Assert.Equal((long)failed, await api.ScalarAsync<long>(
            "SELECT count(*) FROM events WHERE type = 'node.failed' AND data->>'by' = $1", FaultInjector.Actor));
        Assert.Equal((long)failed, await api.ScalarAsync<long>("SELECT count(*) FROM nodes WHERE state = 'Failed' AND repair_due_at IS NOT NULL"));
        // Every lease that held GPUs on a failed node has moved off it or is marked degraded.
        Assert.Equal(0L, await api.ScalarAsync<long>("""
            SELECT count(*) FROM allocations a JOIN nodes n ON n.id = a.node_id JOIN leases l ON l.id = a.lease_id
            WHERE n.repair_due_at IS NOT NULL AND upper(a.period) > $1 AND l.degraded_since IS NULL
            """, afterFaults));
        Assert.Equal(0L, await api.ScalarAsync<long>(TenantClient.OverlapSql));
        Assert.True(await api.ScalarAsync<long>("SELECT count(*) FROM events WHERE type IN ('lease.migrated', 'lease.degraded')") > 0,
            "with this seed some faults fall on nodes carrying the test's leases");

        var down = await api.WithDbAsync(db => db.Nodes.Where(n => n.RepairDueAt != null).Select(n => n.Id).ToListAsync());

        // The next tick repairs them all (the faults it adds fall on other nodes, with this seed).
        var restored = (await TickAsync(afterFaults.AddMinutes(1))).Restored;

        Assert.Equal(failed, restored);
        Assert.Equal(0, await api.WithDbAsync(db => db.Nodes.CountAsync(n => down.Contains(n.Id) && n.State != NodeState.Healthy)));
        Assert.Equal((long)failed, await api.ScalarAsync<long>(
            "SELECT count(*) FROM events WHERE type = 'node.restored' AND data->>'by' = $1", FaultInjector.Actor));
        var causes = await api.WithDbAsync(db => db.Events.Where(e => e.Type == EventTypes.NodeFailed).Select(e => e.Data).ToListAsync());
        Assert.All(causes, c => Assert.False(string.IsNullOrEmpty(c.RootElement.GetProperty("details").GetProperty("cause").GetString())));
    }
}
