using System.Net;
using System.Net.Http.Json;
using MetaCompute.Api.Data;
using MetaCompute.Api.Reservations;
using MetaCompute.Api.Scheduling;
using MetaCompute.Api.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Tests;

/// <summary>The queue admits a waiting request only within its tenant's quota, counting what the tenant already holds.</summary>
public sealed class QueueQuotaTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private const string PoolId = "us-ohio-1-h100";

    [Fact]
    public async Task A_waiting_request_is_admitted_only_while_the_tenants_quota_has_room_for_it_beside_what_it_holds()
    {
        var tenant = await api.CreateTenantAsync();
        using var operatorClient = api.OperatorClient();
        (await operatorClient.PutAsJsonAsync($"/v1/admin/tenants/{tenant.Id}/quotas/{PoolId}", new { maxConcurrentGpus = 16 })).EnsureSuccessStatusCode();
        using var client = api.ClientWithKey(tenant.ApiKey);
        var holder = await api.ClientWithoutQuotaLimitAsync(TenantKind.External, PoolId);
        var pool = await holder.PoolAsync(PoolId);

        // The tenant holds 8 GPUs; another tenant holds the rest of what is for sale, so the next requests wait.
        var booked = await client.ReserveAsync(new { poolId = PoolId, gpuCount = 8, durationHours = 2 });
        Assert.Equal(HttpStatusCode.Created, booked.StatusCode);
        var held = await holder.HoldAsync(pool, pool.Sellable() - 8, 2);
        // Each fits the quota beside the 8 held (a waiting request holds nothing), but not both.
        var waiting = new List<string>();
        for (var i = 0; i < 2; i++)
        {
            var answer = await client.ReserveAsync(new { poolId = PoolId, gpuCount = 8, durationHours = 1, waitForCapacity = new { maxWaitMinutes = 60 } });
            Assert.Equal(HttpStatusCode.Accepted, answer.StatusCode);
            waiting.Add((await answer.ReadReservationAsync()).Id);
        }

        foreach (var reservation in held)
        {
            (await holder.PostIdempotentAsync($"/v1/reservations/{reservation.Id}/cancel", null)).EnsureSuccessStatusCode();
        }

        Assert.Equal(new RequestQueue.Result(1, 0), await api.AdmitAsync(DateTimeOffset.UtcNow));
        var tenantId = Guid.Parse(tenant.Id);
        var statuses = await api.WithDbAsync(db => db.Reservations.Where(r => r.TenantId == tenantId).Select(r => r.Status).ToListAsync());
        Assert.Equal(2, statuses.Count(s => s == ReservationStatus.Scheduled));
        Assert.Equal(1, statuses.Count(s => s == ReservationStatus.Pending));
        Assert.Equal(0L, await api.ScalarAsync<long>(TenantClient.OverlapSql));
    }
}
