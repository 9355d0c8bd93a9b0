using System.Net.Http.Json;
using MetaCompute.Api.Billing;
using MetaCompute.Api.Data;
using MetaCompute.Api.Reservations;
using MetaCompute.Api.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace MetaCompute.Api.Tests;

/// <summary>
/// Metering through extend, cancel mid-way, recall and failure sums to exactly the GPU-seconds held, and a tick run
/// again changes nothing. The class's database is its own: metering moves one clock forward for all of it.
/// </summary>
public sealed class MeteringTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private async Task<MeteringTick.Result> MeterAsync(DateTimeOffset now)
    {
        await using var scope = api.Services.CreateAsyncScope();
        return await MeteringTick.RunAsync(scope.ServiceProvider.GetRequiredService<MetaComputeDbContext>(), new BillingOptions(), now,
            CancellationToken.None);
    }

    private Task<HttpClient> ClientAsync(string poolId, TenantKind kind = TenantKind.External) => api.ClientWithoutQuotaLimitAsync(kind, poolId);

    private static decimal GpuSeconds(int gpus, DateTimeOffset from, DateTimeOffset to) => gpus * (decimal)(to - from).Ticks / TimeSpan.TicksPerSecond;

    [Fact]
    public async Task Metered_GPU_seconds_are_exactly_those_held_and_per_second_tiers_pay_for_them_once()
    {
        const string poolId = "eu-dublin-1-mi300x";
        var tenant = await ClientAsync(poolId);

        var extended = await (await tenant.ReserveAsync(new { poolId, gpuCount = 8, durationHours = 2 })).ReadReservationAsync();
        extended = await (await tenant.PostIdempotentAsync($"/v1/reservations/{extended.Id}/extend", new { additionalHours = 1 })).ReadReservationAsync();

        var cancelled = await (await tenant.ReserveAsync(new { poolId, gpuCount = 4, durationHours = 2 })).ReadReservationAsync();
        cancelled = await (await tenant.PostIdempotentAsync($"/v1/reservations/{cancelled.Id}/cancel", null)).ReadReservationAsync();

        var moved = await (await tenant.ReserveAsync(new { poolId, gpuCount = 8, durationHours = 4 })).ReadReservationAsync();
        using var operatorClient = api.OperatorClient();
        (await operatorClient.PostAsync($"/v1/admin/nodes/{moved.Lease!.Nodes.Single().NodeId}/fail", null)).EnsureSuccessStatusCode();

        // Spot recalled by first-party demand: fill what is left, leaving the spot lease as the only way in.
        var pool = await tenant.PoolAsync(poolId);
        var free = (await tenant.GetFromJsonAsync<Catalog.AvailabilityResponse>($"/v1/pools/{poolId}/availability", Json.Options))!.Steps[0].FreeGpus;
        await (await ClientAsync(poolId)).HoldAsync(pool, free - 8, 6);
        var spot = (await tenant.HoldAsync(pool, 8, 6, "spot")).Single();
        var firstParty = await ClientAsync(poolId, TenantKind.Internal);
        await firstParty.HoldAsync(pool, pool.Rules.HoldbackGpus, 6, "internal");
        await (await firstParty.ReserveAsync(new { poolId, gpuCount = 8, durationHours = 1, tier = "internal" })).ReadReservationAsync();
        spot = (await tenant.GetFromJsonAsync<ReservationResponse>($"/v1/reservations/{spot.Id}", Json.Options))!;

        var expected = new Dictionary<string, decimal>
        {
            [extended.Id] = GpuSeconds(8, extended.StartAt, extended.EndAt),
            [cancelled.Id] = GpuSeconds(4, cancelled.StartAt, cancelled.CancelledAt!.Value),
            [moved.Id] = GpuSeconds(8, moved.StartAt, moved.EndAt),
            [spot.Id] = GpuSeconds(8, spot.StartAt, spot.RecallAt!.Value),
        };

        // Four ticks at once (say, an old leader that has not noticed it lost the lock): one meters, the others wait for
        // it on the state row and then find nothing left to meter.
        var later = DateTimeOffset.UtcNow.AddHours(8);
        var runs = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => MeterAsync(later)));
        Assert.Single(runs, r => r.Hours > 0);

        var metered = await api.WithDbAsync(db => db.UsageRecords.GroupBy(u => u.ReservationId)
            .Select(g => new { g.Key, Seconds = g.Sum(u => u.GpuSeconds) }).ToDictionaryAsync(x => x.Key.ToString(), x => x.Seconds));
        foreach (var (id, seconds) in expected)
        {
            Assert.Equal(seconds, metered[id]);
        }

        // On-demand and spot pay per second held, hour by hour, each hour rounded to the micro-dollar.
        var charges = await api.WithDbAsync(db => db.Charges.Where(c => c.Kind == ChargeKind.Usage).ToListAsync());
        foreach (var r in new[] { extended, cancelled, moved, spot })
        {
            var own = charges.Where(c => c.ReservationId.ToString() == r.Id).ToList();
            var exact = r.Price.PricePerGpuHour * expected[r.Id] / 3600m;
            Assert.InRange(own.Sum(c => c.Amount), exact - own.Count * 0.0000005m, exact + own.Count * 0.0000005m);
        }

        // The same tick again, and a later one, add nothing for hours already metered.
        var rows = await api.ScalarAsync<long>("SELECT (SELECT count(*) FROM usage_records) + (SELECT count(*) FROM charges)");
        Assert.Equal(new MeteringTick.Result(0, 0, 0, 0), await MeterAsync(later));
        await MeterAsync(later.AddHours(3));
        Assert.Equal(rows, await api.ScalarAsync<long>(
            "SELECT (SELECT count(*) FROM usage_records WHERE hour < $1) + (SELECT count(*) FROM charges WHERE hour < $1 OR hour IS NULL)",
            MeteringTick.FloorHour(later.AddMinutes(-1))));
    }
}
