using System.Net;
using MetaCompute.Api.Data;
using MetaCompute.Api.Reservations;
using MetaCompute.Api.Scheduling;
using MetaCompute.Api.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Tests;

/// <summary>Waiting requests, cancellations and scheduler ticks all at once against one pool; then the tables are read.</summary>
public sealed class QueueConcurrencyTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private const string PoolId = "us-ohio-1-h100";

    private Task<HttpClient> ClientAsync() => api.ClientWithoutQuotaLimitAsync(TenantKind.External, PoolId);

    private Task<RequestQueue.Result> TickAsync() => api.AdmitAsync(DateTimeOffset.UtcNow);

    [Fact]
    public async Task Parallel_waiting_requests_cancellations_and_ticks_never_overlap_and_admit_no_more_than_was_freed()
    {
        var holder = await ClientAsync();
        var pool = await holder.PoolAsync(PoolId);
        var holds = new List<ReservationResponse>();
        for (var i = 0; i < pool.Sellable() / 8; i++)
        {
            holds.AddRange(await holder.HoldAsync(pool, 8, 3));
        }

        var waiters = await Task.WhenAll(Enumerable.Range(0, 12).Select(async _ => await ClientAsync()));
        var asked = await Task.WhenAll(waiters.Select(w =>
            w.ReserveAsync(new { poolId = PoolId, gpuCount = 8, durationHours = 1, waitForCapacity = new { maxWaitMinutes = 30 } })));
        Assert.All(asked, a => Assert.Equal(HttpStatusCode.Accepted, a.StatusCode));

        // Free six nodes while ticks run: cancellations go through the pool's decider, ticks take the same lock.
        var freed = holds.Take(6).ToList();
        var work = freed.Select(h => (Task)holder.PostIdempotentAsync($"/v1/reservations/{h.Id}/cancel", null))
            .Concat(Enumerable.Range(0, 4).Select(_ => (Task)TickAsync()));
        await Task.WhenAll(work);
        await TickAsync();

        var statuses = await api.WithDbAsync(db => db.Reservations.Where(r => r.PoolId == PoolId)
            .GroupBy(r => r.Status).Select(g => new { g.Key, Count = g.Count() }).ToDictionaryAsync(x => x.Key, x => x.Count));
        var scheduled = statuses.GetValueOrDefault(ReservationStatus.Scheduled) + statuses.GetValueOrDefault(ReservationStatus.Active)
                        - (holds.Count - freed.Count);
        Assert.Equal(freed.Count, scheduled);
        Assert.Equal(12 - freed.Count, statuses.GetValueOrDefault(ReservationStatus.Pending));
        Assert.Equal(0L, await api.ScalarAsync<long>(TenantClient.OverlapSql));
    }
}
