using System.Net;
using System.Net.Http.Json;
using MetaCompute.Api.Data;
using MetaCompute.Api.Reservations;
using MetaCompute.Api.Scheduling;
using MetaCompute.Api.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace MetaCompute.Api.Tests;

/// <summary>First-party demand recalling spot leases with notice; each test owns one pool of the class's database.</summary>
public sealed class RecallTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private Task<HttpClient> ClientAsync(string poolId, TenantKind kind = TenantKind.External) => api.ClientWithoutQuotaLimitAsync(kind, poolId);

    private async Task TickAsync(DateTimeOffset now)
    {
        await using var scope = api.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<MetaComputeDbContext>();
        await LifecycleTick.RunAsync(db, new SchedulerOptions(), now, CancellationToken.None);
    }

    private Task<List<(string Type, DateTimeOffset At)>> EventsAsync(string reservationId) =>
        api.WithDbAsync(async db => (await db.Events.Where(e => e.ReservationId == Guid.Parse(reservationId)).OrderBy(e => e.Id)
            .Select(e => new { e.Type, e.OccurredAt }).ToListAsync()).Select(e => (e.Type, e.OccurredAt)).ToList());

    [Fact]
    public async Task First_party_demand_recalls_the_fewest_spot_leases_after_their_notice_and_starts_when_it_ends()
    {
        const string poolId = "us-ohio-1-h100";
        var others = await ClientAsync(poolId);
        var pool = await others.PoolAsync(poolId);
        await others.HoldAsync(pool, pool.Sellable() - 32, 4);
        var spotTenant = await ClientAsync(poolId);
        var wide = (await spotTenant.HoldAsync(pool, 16, 4, "spot")).Single();
        var narrow = await spotTenant.HoldAsync(pool, 8, 4, "spot");
        narrow.AddRange(await spotTenant.HoldAsync(pool, 8, 4, "spot"));
        var firstParty = await ClientAsync(poolId, TenantKind.Internal);
        if (pool.Rules.HoldbackGpus > 0)
        {
            await firstParty.HoldAsync(pool, pool.Rules.HoldbackGpus, 4, "internal");
        }

        var asked = DateTimeOffset.UtcNow;
        var internalDemand = await (await firstParty.ReserveAsync(new { poolId, gpuCount = 16, durationHours = 2, tier = "internal" })).ReadReservationAsync();

        // One lease of 16 disrupts less than two of 8: only it is recalled, after the pool's notice.
        var recalled = (await spotTenant.GetFromJsonAsync<ReservationResponse>($"/v1/reservations/{wide.Id}", Json.Options))!;
        var recallAt = recalled.RecallAt!.Value;
        Assert.InRange(recallAt - asked, TimeSpan.FromSeconds(pool.Rules.RecallNoticeSeconds - 1), TimeSpan.FromSeconds(pool.Rules.RecallNoticeSeconds + 30));
        Assert.Equal(recallAt, internalDemand.StartAt);
        Assert.Equal(TimeSpan.FromHours(2), internalDemand.EndAt - internalDemand.StartAt);
        Assert.Equal(recallAt, recalled.EndAt);
        Assert.Contains(EventTypes.LeaseRecallNotice, (await EventsAsync(wide.Id)).Select(e => e.Type));
        foreach (var kept in narrow)
        {
            var again = (await spotTenant.GetFromJsonAsync<ReservationResponse>($"/v1/reservations/{kept.Id}", Json.Options))!;
            Assert.Null(again.RecallAt);
            Assert.Equal(kept.EndAt, again.EndAt);
        }

        // A lease under recall cannot be extended past its notice.
        var extend = await spotTenant.PostIdempotentAsync($"/v1/reservations/{wide.Id}/extend", new { additionalHours = 1 });
        Assert.Equal(HttpStatusCode.Conflict, extend.StatusCode);

        await TickAsync(recallAt.AddSeconds(-1));
        Assert.Equal(ReservationStatus.Active, (await spotTenant.GetFromJsonAsync<ReservationResponse>($"/v1/reservations/{wide.Id}", Json.Options))!.Status);
        await TickAsync(recallAt.AddSeconds(5));
        Assert.Equal(ReservationStatus.Recalled, (await spotTenant.GetFromJsonAsync<ReservationResponse>($"/v1/reservations/{wide.Id}", Json.Options))!.Status);
        Assert.Equal((EventTypes.ReservationRecalled, recallAt), (await EventsAsync(wide.Id))[^1]);
        Assert.DoesNotContain(EventTypes.ReservationEndingSoon, (await EventsAsync(wide.Id)).Select(e => e.Type));

        Assert.Equal(0L, await api.ScalarAsync<long>(TenantClient.OverlapSql));
        Assert.Equal(0L, await api.ScalarAsync<long>(
            "SELECT count(*) FROM allocations a JOIN leases l ON l.id = a.lease_id WHERE l.reservation_id = $1 AND upper(a.period) > $2",
            Guid.Parse(wide.Id), recallAt));
    }

    [Fact]
    public async Task Reserved_and_on_demand_leases_are_never_recalled()
    {
        const string poolId = "us-ohio-1-h200";
        var others = await ClientAsync(poolId);
        var pool = await others.PoolAsync(poolId);
        var start = DateTimeOffset.UtcNow;
        var half = pool.Sellable() / 2 / 8 * 8;
        await others.HoldAsync(pool, half, 4);
        await others.HoldAsync(pool, pool.Sellable() - half, 4, "reserved");
        var firstParty = await ClientAsync(poolId, TenantKind.Internal);
        if (pool.Rules.HoldbackGpus > 0)
        {
            await firstParty.HoldAsync(pool, pool.Rules.HoldbackGpus, 4, "internal");
        }

        var answer = await firstParty.ReserveAsync(new { poolId, gpuCount = 8, durationHours = 1, tier = "internal" });

        await answer.AssertProblemAsync(HttpStatusCode.Conflict, ReservationEndpoints.InsufficientCapacityType);
        Assert.Equal(0L, await api.ScalarAsync<long>("SELECT count(*) FROM events WHERE type = $1 AND occurred_at >= $2",
            EventTypes.LeaseRecallNotice, start.AddSeconds(-1)));
    }

    [Fact]
    public async Task Queued_first_party_demand_recalls_spot_when_the_scheduler_admits_it()
    {
        const string poolId = "eu-dublin-1-mi300x";
        var others = await ClientAsync(poolId);
        var pool = await others.PoolAsync(poolId);
        await others.HoldAsync(pool, pool.Sellable() - 8, 4);
        var spotTenant = await ClientAsync(poolId);
        var spot = (await spotTenant.HoldAsync(pool, 8, 4, "spot")).Single();
        var firstParty = await ClientAsync(poolId, TenantKind.Internal);
        await firstParty.HoldAsync(pool, pool.Rules.HoldbackGpus, 4, "internal");

        // Someone already waits, so the first-party request queues behind them instead of recalling at once.
        var waiting = await others.ReserveAsync(new { poolId, gpuCount = 8, durationHours = 1, waitForCapacity = new { maxWaitMinutes = 60 } });
        Assert.Equal(HttpStatusCode.Accepted, waiting.StatusCode);
        var queued = await firstParty.ReserveAsync(new { poolId, gpuCount = 8, durationHours = 1, tier = "internal", waitForCapacity = new { maxWaitMinutes = 60 } });
        Assert.Equal(HttpStatusCode.Accepted, queued.StatusCode);
        var internalDemand = await queued.ReadReservationAsync();

        Assert.Equal(1, (await api.AdmitAsync(DateTimeOffset.UtcNow)).Admitted);

        var recalled = (await spotTenant.GetFromJsonAsync<ReservationResponse>($"/v1/reservations/{spot.Id}", Json.Options))!;
        var admitted = (await firstParty.GetFromJsonAsync<ReservationResponse>($"/v1/reservations/{internalDemand.Id}", Json.Options))!;
        Assert.Equal(ReservationStatus.Scheduled, admitted.Status);
        Assert.Equal(recalled.RecallAt, admitted.StartAt);
        Assert.Equal(ReservationStatus.Pending, (await (await others.GetAsync($"/v1/reservations/{(await waiting.ReadReservationAsync()).Id}"))
            .ReadReservationAsync()).Status);
        Assert.Equal(0L, await api.ScalarAsync<long>(TenantClient.OverlapSql));
    }

    [Fact]
    public async Task Demand_for_a_later_block_lets_the_spot_lease_run_until_that_block_starts()
    {
        const string poolId = "eu-dublin-1-b200";
        var others = await ClientAsync(poolId);
        var pool = await others.PoolAsync(poolId);
        var t = DateTimeOffset.UtcNow.AddDays(2);
        var start = new DateTimeOffset(t.Year, t.Month, t.Day, t.Hour, 0, 0, TimeSpan.Zero);
        for (var left = pool.Sellable() - 8; left > 0; left -= 64)
        {
            await (await others.ReserveAsync(new { poolId, gpuCount = Math.Min(64, left), startAt = start, durationHours = 1, tier = "reserved" }))
                .ReadReservationAsync();
        }

        var spotTenant = await ClientAsync(poolId);
        var spot = (await spotTenant.HoldAsync(pool, 8, 96, "spot")).Single();
        var firstParty = await ClientAsync(poolId, TenantKind.Internal);
        await (await firstParty.ReserveAsync(new { poolId, gpuCount = pool.Rules.HoldbackGpus, startAt = start, durationHours = 1, tier = "internal" }))
            .ReadReservationAsync();

        var block = await (await firstParty.ReserveAsync(new { poolId, gpuCount = 8, startAt = start, durationHours = 1, tier = "internal" }))
            .ReadReservationAsync();

        var recalled = (await spotTenant.GetFromJsonAsync<ReservationResponse>($"/v1/reservations/{spot.Id}", Json.Options))!;
        Assert.Equal(start, block.StartAt);
        Assert.Equal(start, recalled.RecallAt);
        Assert.Equal(start, recalled.EndAt);
        Assert.Equal(0L, await api.ScalarAsync<long>(TenantClient.OverlapSql));
    }
}
