using System.Net;
using System.Net.Http.Json;
using MetaCompute.Api.Admin;
using MetaCompute.Api.Data;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Reservations;
using MetaCompute.Api.Tests.Infrastructure;
using Npgsql;

namespace MetaCompute.Api.Tests;

/// <summary>Maintenance windows on nodes; each test owns one pool of the class's database.</summary>
public sealed class MaintenanceTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private Task<HttpClient> ClientAsync(string poolId, TenantKind kind = TenantKind.External) => api.ClientWithoutQuotaLimitAsync(kind, poolId);

    private static DateTimeOffset HourAhead(int hours)
    {
        var t = DateTimeOffset.UtcNow.AddHours(hours);
        return new DateTimeOffset(t.Year, t.Month, t.Day, t.Hour, 0, 0, TimeSpan.Zero);
    }

    private Task<long> AllocationsOnAsync(int nodeId, DateTimeOffset from, DateTimeOffset to) =>
        api.ScalarAsync<long>("SELECT count(*) FROM allocations WHERE node_id = $1 AND period && tstzrange($2, $3)", nodeId, from, to);

    [Fact]
    public async Task A_window_moves_the_leases_in_its_way_to_the_same_island_and_nothing_is_placed_inside_it()
    {
        const string poolId = "eu-dublin-1-mi300x";
        var tenant = await ClientAsync(poolId);
        var lease = await (await tenant.ReserveAsync(new { poolId, gpuCount = 8, durationHours = 6 })).ReadReservationAsync();
        var nodeId = int.Parse(lease.Lease!.Nodes.Single().NodeId);
        var (from, to) = (HourAhead(2), HourAhead(4));
        using var operatorClient = api.OperatorClient();

        var created = await operatorClient.PostAsJsonAsync($"/v1/admin/nodes/{nodeId}/maintenance", new { startAt = from, endAt = to, reason = "BMC firmware" });

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var window = (await created.Content.ReadFromJsonAsync<MaintenanceWindowResponse>(Json.Options))!;
        var moved = Assert.Single(window.Leases);
        Assert.Equal(("migrated", lease.Lease.Id), (moved.Outcome, moved.LeaseId));
        var now = (await tenant.GetFromJsonAsync<ReservationResponse>($"/v1/reservations/{lease.Id}", Json.Options))!;
        var newNode = now.Lease!.Nodes.Single();
        Assert.Equal(moved.ToNodeId, newNode.NodeId);
        Assert.Equal(lease.Lease.Nodes.Single().FabricIsland, newNode.FabricIsland);
        Assert.Equal(0L, await AllocationsOnAsync(nodeId, DateTimeOffset.UtcNow.AddSeconds(1), to));

        // Sell every GPU of the pool for the window's period: none lands on the node.
        var pool = await tenant.PoolAsync(poolId);
        var sold = 0;
        while (true)
        {
            var answer = await tenant.ReserveAsync(new { poolId, gpuCount = 8, startAt = from, durationHours = 2, tier = "reserved" });
            if (answer.StatusCode == HttpStatusCode.Conflict)
            {
                break;
            }

            await answer.ReadReservationAsync();
            sold += 8;
            Assert.True(sold <= pool.HealthyGpus, "sold more GPUs than the pool has");
        }

        Assert.Equal(0L, await AllocationsOnAsync(nodeId, from, to));

        // The database refuses an allocation inside the window even if something tried to write one.
        var error = await Assert.ThrowsAsync<PostgresException>(() => api.ScalarAsync<int>(
            "INSERT INTO allocations (lease_id, gpu_id, node_id, period) VALUES ($1, $2, $3, tstzrange($4, $5)) RETURNING 1",
            Guid.Parse(lease.Lease.Id), (long)nodeId * 8, nodeId, from, to));
        Assert.Equal(PostgresErrorCodes.ExclusionViolation, error.SqlState);

        // Utilization shows the node as unavailable during the window, not as allocated.
        var utilization = (await operatorClient.GetFromJsonAsync<UtilizationResponse>(
            $"/v1/admin/utilization?poolId={poolId}&from={Uri.EscapeDataString(from.ToString("O"))}&to={Uri.EscapeDataString(to.ToString("O"))}&stepMinutes=120",
            Json.Options))!.Steps.Single();
        Assert.Equal(pool.TotalGpus - pool.HealthyGpus + 8, utilization.UnavailableGpus);
        Assert.Equal(utilization.TotalGpus,
            utilization.AllocatedGpus + utilization.FreeGpus + utilization.HeldBackGpus + utilization.UnavailableGpus);

        var windows = (await operatorClient.GetFromJsonAsync<Page<MaintenanceWindowResponse>>($"/v1/admin/nodes/{nodeId}/maintenance",
            Json.Options))!;
        Assert.Equal(window.Id, Assert.Single(windows.Items).Id);
        var overlapping = await operatorClient.PostAsJsonAsync($"/v1/admin/nodes/{nodeId}/maintenance",
            new { startAt = from.AddHours(1), endAt = to.AddHours(1), reason = "again" });
        await overlapping.AssertProblemAsync(HttpStatusCode.Conflict, MaintenanceEndpoints.MaintenanceConflictType);
        Assert.Equal(0L, await api.ScalarAsync<long>(TenantClient.OverlapSql));
    }

    [Fact]
    public async Task A_window_over_leases_that_cannot_move_is_refused_listing_them_unless_forced()
    {
        const string poolId = "us-ohio-1-h200";
        var tenant = await ClientAsync(poolId);
        var pool = await tenant.PoolAsync(poolId);
        var held = await tenant.HoldAsync(pool, pool.Sellable(), 6);
        if (pool.Rules.HoldbackGpus > 0)
        {
            await (await ClientAsync(poolId, TenantKind.Internal)).HoldAsync(pool, pool.Rules.HoldbackGpus, 6, "internal");
        }

        var victim = held[0];
        var nodeId = int.Parse(victim.Lease!.Nodes[0].NodeId);
        var (from, to) = (HourAhead(2), HourAhead(3));
        using var operatorClient = api.OperatorClient();
        var before = await AllocationsOnAsync(nodeId, from, to);

        var refused = await operatorClient.PostAsJsonAsync($"/v1/admin/nodes/{nodeId}/maintenance", new { startAt = from, endAt = to, reason = "PSU swap" });

        var problem = await refused.AssertProblemAsync(HttpStatusCode.Conflict, MaintenanceEndpoints.MaintenanceConflictType);
        Assert.Equal(victim.Lease.Id, problem.GetProperty("leases")[0].GetProperty("leaseId").GetString());
        Assert.Equal(before, await AllocationsOnAsync(nodeId, from, to));

        var forced = await operatorClient.PostAsJsonAsync($"/v1/admin/nodes/{nodeId}/maintenance",
            new { startAt = from, endAt = to, reason = "PSU swap", force = true });
        Assert.Equal(HttpStatusCode.Created, forced.StatusCode);
        var window = (await forced.Content.ReadFromJsonAsync<MaintenanceWindowResponse>(Json.Options))!;
        Assert.Equal("degraded", Assert.Single(window.Leases).Outcome);
        Assert.Equal(0L, await AllocationsOnAsync(nodeId, from, to));
        Assert.Equal(1L, await api.ScalarAsync<long>("SELECT count(*) FROM leases WHERE id = $1 AND degraded_since = $2", Guid.Parse(victim.Lease.Id), from));

        (await operatorClient.DeleteAsync($"/v1/admin/nodes/{nodeId}/maintenance/{window.Id}")).EnsureSuccessStatusCode();
        var left = (await operatorClient.GetFromJsonAsync<Page<MaintenanceWindowResponse>>($"/v1/admin/nodes/{nodeId}/maintenance",
            Json.Options))!;
        Assert.Empty(left.Items);
        Assert.Equal(0L, await api.ScalarAsync<long>(TenantClient.OverlapSql));
    }

    [Fact]
    public async Task A_window_needs_a_reason_and_an_end_after_its_start()
    {
        using var operatorClient = api.OperatorClient();
        var answer = await operatorClient.PostAsJsonAsync("/v1/admin/nodes/1/maintenance", new { startAt = HourAhead(2), endAt = HourAhead(3) });
        var problem = await answer.AssertProblemAsync(HttpStatusCode.BadRequest, Problems.ValidationFailedType);
        Assert.True(problem.GetProperty("errors").TryGetProperty("reason", out _));
        answer = await operatorClient.PostAsJsonAsync("/v1/admin/nodes/1/maintenance", new { startAt = HourAhead(3), endAt = HourAhead(2), reason = "" });
        problem = await answer.AssertProblemAsync(HttpStatusCode.BadRequest, Problems.ValidationFailedType);
        Assert.True(problem.GetProperty("errors").TryGetProperty("endAt", out _));
        Assert.True(problem.GetProperty("errors").TryGetProperty("reason", out _));
        await (await operatorClient.PostAsJsonAsync("/v1/admin/nodes/999999/maintenance", new { startAt = HourAhead(2), endAt = HourAhead(3), reason = "x" }))
            .AssertProblemAsync(HttpStatusCode.NotFound, Problems.NotFoundType);
    }
}
