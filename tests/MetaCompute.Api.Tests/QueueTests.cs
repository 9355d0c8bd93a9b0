using System.Net;
using System.Net.Http.Json;
using MetaCompute.Api.Data;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Reservations;
using MetaCompute.Api.Scheduling;
using MetaCompute.Api.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Tests;

/// <summary>
/// Requests that wait for capacity: pending, then admitted by the scheduler's tick (driven here at chosen times) in
/// order of tier, fair share and age, with backfill that never delays a blocked request; rejected when the wait runs out.
/// Each test owns one pool of the class's database.
/// </summary>
public sealed class QueueTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private Task<RequestQueue.Result> AdmitAsync(DateTimeOffset now) => api.AdmitAsync(now);

    private Task<HttpClient> ClientAsync(string poolId) => api.ClientWithoutQuotaLimitAsync(TenantKind.External, poolId);

    private static async Task<ReservationResponse> WaitAsync(HttpClient client, string poolId, int gpus, int hours, string tier, int maxWaitMinutes)
    {
        var answer = await client.ReserveAsync(new
        {
            poolId, gpuCount = gpus, durationHours = hours, tier, waitForCapacity = new { maxWaitMinutes },
        });
        Assert.Equal(HttpStatusCode.Accepted, answer.StatusCode);
        var pending = await answer.ReadReservationAsync();
        Assert.Equal($"/v1/reservations/{pending.Id}", answer.Headers.Location?.OriginalString);
        return pending;
    }

    private Task<Dictionary<string, ReservationStatus>> StatusesAsync(params ReservationResponse[] reservations) =>
        api.WithDbAsync(async db =>
        {
            var ids = reservations.Select(r => Guid.Parse(r.Id)).ToList();
            return await db.Reservations.Where(r => ids.Contains(r.Id)).ToDictionaryAsync(r => r.Id.ToString(), r => r.Status);
        });

    [Fact]
    public async Task A_waiting_request_is_pending_until_capacity_frees_and_rejected_when_its_wait_runs_out()
    {
        const string poolId = "eu-dublin-1-mi300x";
        var holder = await ClientAsync(poolId);
        var pool = await holder.PoolAsync(poolId);
        var held = await holder.HoldAsync(pool, pool.Sellable(), 2);
        var waiter = await ClientAsync(poolId);

        var refused = await waiter.ReserveAsync(new { poolId, gpuCount = 8, durationHours = 1 });
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        var patient = await WaitAsync(waiter, poolId, 8, 1, "on_demand", 60);
        var hasty = await WaitAsync(waiter, poolId, 8, 1, "on_demand", 1);
        var quitter = await WaitAsync(waiter, poolId, 8, 1, "on_demand", 60);
        var quit = await (await waiter.PostIdempotentAsync($"/v1/reservations/{quitter.Id}/cancel", null)).ReadReservationAsync();
        Assert.Equal(ReservationStatus.Cancelled, quit.Status);
        Assert.Equal(ReservationStatus.Pending, patient.Status);
        Assert.Null(patient.Lease);
        Assert.NotNull(patient.WaitUntil);

        var now = DateTimeOffset.UtcNow;
        Assert.Equal(new RequestQueue.Result(0, 0), await AdmitAsync(now));
        Assert.Equal(new RequestQueue.Result(0, 1), await AdmitAsync(now.AddMinutes(2)));
        var rejectedAt = await api.WithDbAsync(db => db.Events.Where(e => e.ReservationId == Guid.Parse(hasty.Id) && e.Type == EventTypes.ReservationRejected)
            .Select(e => e.OccurredAt).SingleAsync());
        Assert.Equal(hasty.WaitUntil, rejectedAt);

        (await holder.PostIdempotentAsync($"/v1/reservations/{held[0].Id}/cancel", null)).EnsureSuccessStatusCode();
        Assert.Equal(new RequestQueue.Result(1, 0), await AdmitAsync(DateTimeOffset.UtcNow));

        var admitted = (await waiter.GetFromJsonAsync<ReservationResponse>($"/v1/reservations/{patient.Id}", Json.Options))!;
        Assert.Equal(ReservationStatus.Scheduled, admitted.Status);
        Assert.Equal(8, admitted.Lease!.Nodes.Sum(n => n.GpuIndices.Count));
        Assert.Equal(TimeSpan.FromHours(1), admitted.EndAt - admitted.StartAt);
        Assert.Equal(ReservationStatus.Rejected, (await StatusesAsync(hasty))[hasty.Id]);
        Assert.Equal(0L, await api.ScalarAsync<long>(TenantClient.OverlapSql));
    }

    [Fact]
    public async Task Capacity_goes_to_the_highest_tier_first_then_to_the_oldest_request()
    {
        const string poolId = "eu-dublin-1-b200";
        var holder = await ClientAsync(poolId);
        var pool = await holder.PoolAsync(poolId);
        await holder.HoldAsync(pool, pool.Sellable() - 32, 2);
        var smallHolds = new List<ReservationResponse>();
        for (var i = 0; i < 4; i++)
        {
            smallHolds.AddRange(await holder.HoldAsync(pool, 8, 2));
        }

        var spot = await WaitAsync(await ClientAsync(poolId), poolId, 8, 1, "spot", 600);
        var olderOnDemand = await WaitAsync(await ClientAsync(poolId), poolId, 8, 1, "on_demand", 600);
        var newerOnDemand = await WaitAsync(await ClientAsync(poolId), poolId, 8, 1, "on_demand", 600);
        var reserved = await WaitAsync(await ClientAsync(poolId), poolId, 8, 1, "reserved", 600);

        var order = new List<string>();
        foreach (var hold in smallHolds)
        {
            (await holder.PostIdempotentAsync($"/v1/reservations/{hold.Id}/cancel", null)).EnsureSuccessStatusCode();
            Assert.Equal(1, (await AdmitAsync(DateTimeOffset.UtcNow)).Admitted);
            var statuses = await StatusesAsync(spot, olderOnDemand, newerOnDemand, reserved);
            order.Add(statuses.Single(s => s.Value == ReservationStatus.Scheduled && !order.Contains(s.Key)).Key);
        }

        Assert.Equal([reserved.Id, olderOnDemand.Id, newerOnDemand.Id, spot.Id], order);
    }

    [Fact]
    public async Task Between_tenants_of_one_tier_the_one_that_used_fewer_GPU_hours_recently_goes_first()
    {
        const string poolId = "us-ohio-1-h100";
        var heavy = await ClientAsync(poolId);
        var pool = await heavy.PoolAsync(poolId);
        await heavy.HoldAsync(pool, pool.Sellable() - 8, 2);
        var filler = await ClientAsync(poolId);
        var last = (await filler.HoldAsync(pool, 8, 2)).Single();
        var light = await ClientAsync(poolId);

        var heavyWaits = await WaitAsync(heavy, poolId, 8, 1, "on_demand", 600);
        var lightWaits = await WaitAsync(light, poolId, 8, 1, "on_demand", 600);
        (await filler.PostIdempotentAsync($"/v1/reservations/{last.Id}/cancel", null)).EnsureSuccessStatusCode();

        // Ten minutes on, the heavy tenant has held most of the pool; the light one nothing.
        Assert.Equal(1, (await AdmitAsync(DateTimeOffset.UtcNow.AddMinutes(10))).Admitted);
        var statuses = await StatusesAsync(heavyWaits, lightWaits);
        Assert.Equal(ReservationStatus.Scheduled, statuses[lightWaits.Id]);
        Assert.Equal(ReservationStatus.Pending, statuses[heavyWaits.Id]);
        (await heavy.PostIdempotentAsync($"/v1/reservations/{heavyWaits.Id}/cancel", null)).EnsureSuccessStatusCode();
    }

    [Fact]
    public async Task A_smaller_request_starts_ahead_of_a_blocked_larger_one_only_if_that_does_not_delay_it()
    {
        const string poolId = "us-ohio-1-h200";
        var holder = await ClientAsync(poolId);
        var pool = await holder.PoolAsync(poolId);
        var large = pool.Sellable() / 2 / 8 * 8;
        // From now on 8 GPUs are free; in two hours exactly `large` will be, and the rest only after three.
        await holder.HoldAsync(pool, pool.Sellable() - large, 3);
        await holder.HoldAsync(pool, large - 8, 2);

        var head = await WaitAsync(await ClientAsync(poolId), poolId, large, 1, "reserved", 600);
        var wouldDelayHead = await WaitAsync(await ClientAsync(poolId), poolId, 8, 4, "on_demand", 600);
        var fitsInTheGap = await WaitAsync(await ClientAsync(poolId), poolId, 8, 1, "on_demand", 600);

        Assert.Equal(1, (await AdmitAsync(DateTimeOffset.UtcNow)).Admitted);

        var statuses = await StatusesAsync(head, wouldDelayHead, fitsInTheGap);
        Assert.Equal(ReservationStatus.Pending, statuses[head.Id]);
        Assert.Equal(ReservationStatus.Pending, statuses[wouldDelayHead.Id]);
        Assert.Equal(ReservationStatus.Scheduled, statuses[fitsInTheGap.Id]);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(CreateReservationRequestValidator.MaxWaitMinutes + 1)]
    public async Task A_wait_out_of_range_is_refused_naming_its_field(int minutes)
    {
        const string poolId = "us-ohio-1-h200";
        var client = await ClientAsync(poolId);
        var answer = await client.ReserveAsync(new { poolId, gpuCount = 8, durationHours = 1, waitForCapacity = new { maxWaitMinutes = minutes } });
        var problem = await answer.AssertProblemAsync(HttpStatusCode.BadRequest, Problems.ValidationFailedType);
        Assert.True(problem.GetProperty("errors").TryGetProperty("waitForCapacity.maxWaitMinutes", out _), problem.ToString());
    }
}
