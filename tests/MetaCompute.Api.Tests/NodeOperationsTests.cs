using System.Net;
using System.Net.Http.Json;
using MetaCompute.Api.Admin;
using MetaCompute.Api.Data;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Tests.Infrastructure;

namespace MetaCompute.Api.Tests;

/// <summary>Owns the MI300X pool of its database: draining and undraining nodes.</summary>
public sealed class NodeOperationsTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private const string Pool = "eu-dublin-1-mi300x";

    private async Task<TestTenant> TenantAsync()
    {
        var tenant = await api.CreateTenantAsync();
        using var operatorClient = api.OperatorClient();
        (await operatorClient.PutAsJsonAsync($"/v1/admin/tenants/{tenant.Id}/quotas/{Pool}", new { maxConcurrentGpus = 100_000 })).EnsureSuccessStatusCode();
        return tenant;
    }

    private static DateTimeOffset HourAhead(int days)
    {
        var t = DateTimeOffset.UtcNow.AddDays(days);
        return new DateTimeOffset(t.Year, t.Month, t.Day, t.Hour, 0, 0, TimeSpan.Zero);
    }

    private Task<long> AllocationsOnAsync(int nodeId, DateTimeOffset from) =>
        api.ScalarAsync<long>("SELECT count(*) FROM allocations WHERE node_id = $1 AND upper(period) > $2", nodeId, from);

    [Fact]
    public async Task A_drained_node_takes_no_new_allocations_keeps_its_leases_and_takes_them_again_once_undrained()
    {
        var tenant = await TenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        using var operatorClient = api.OperatorClient();
        await using var replica = new ApiFactory.Replica(api.ConnectionString);
        using var replicaClient = replica.CreateClient();
        replicaClient.DefaultRequestHeaders.Authorization = new("Bearer", tenant.ApiKey);

        // A lease on the node before the drain runs on.
        var existing = await (await client.ReserveAsync(new { poolId = Pool, gpuCount = 8, durationHours = 2 })).ReadReservationAsync();
        var nodeId = int.Parse(existing.Lease!.Nodes.Single().NodeId);
        (await replicaClient.GetAsync($"/v1/pools/{Pool}/availability")).EnsureSuccessStatusCode(); // the replica builds its index now

        var drained = await operatorClient.PostAsync($"/v1/admin/nodes/{nodeId}/drain", null);
        Assert.Equal(HttpStatusCode.OK, drained.StatusCode);
        Assert.Equal(NodeState.Draining, (await drained.Content.ReadFromJsonAsync<NodeResponse>(Json.Options))!.State);

        // Sell every GPU of the pool for a later window, half through each replica: none may land on the drained node.
        var start = HourAhead(5);
        var free = (await client.GetFromJsonAsync<Catalog.AvailabilityResponse>(
            $"/v1/pools/{Pool}/availability?from={Uri.EscapeDataString(start.ToString("O"))}&to={Uri.EscapeDataString(start.AddHours(1).ToString("O"))}&stepMinutes=60",
            Json.Options))!.Steps.Single().FreeGpus;
        var booked = 0;
        for (var i = 0; booked < free; i++)
        {
            var response = await (i % 2 == 0 ? client : replicaClient)
                .ReserveAsync(new { poolId = Pool, gpuCount = 8, startAt = start, durationHours = 1, tier = "reserved" });
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            booked += 8;
        }

        var soldOut = await replicaClient.ReserveAsync(new { poolId = Pool, gpuCount = 8, startAt = start, durationHours = 1, tier = "reserved" });
        Assert.Equal(HttpStatusCode.Conflict, soldOut.StatusCode);
        Assert.Equal(0L, await AllocationsOnAsync(nodeId, start));
        Assert.Equal(8L, await AllocationsOnAsync(nodeId, DateTimeOffset.UtcNow));
        Assert.Equal(ReservationStatus.Scheduled, (await (await client.GetAsync($"/v1/reservations/{existing.Id}")).ReadReservationAsync()).Status);

        Assert.Equal(HttpStatusCode.OK, (await operatorClient.PostAsync($"/v1/admin/nodes/{nodeId}/undrain", null)).StatusCode);
        var after = await replicaClient.ReserveAsync(new { poolId = Pool, gpuCount = 8, startAt = start, durationHours = 1, tier = "reserved" });
        Assert.Equal(HttpStatusCode.Created, after.StatusCode);
        Assert.Equal(8L, await AllocationsOnAsync(nodeId, start));
        Assert.Equal(0L, await api.ScalarAsync<long>(TenantClient.OverlapSql));
    }

    [Fact]
    public async Task Draining_is_audited_and_a_transition_that_does_not_apply_is_409()
    {
        using var operatorClient = api.OperatorClient();
        var node = (await operatorClient.GetFromJsonAsync<Page<NodeResponse>>($"/v1/admin/nodes?poolId={Pool}&state=healthy&limit=1", Json.Options))!.Items
            .Single();

        await (await operatorClient.PostAsync($"/v1/admin/nodes/{node.Id}/undrain", null))
            .AssertProblemAsync(HttpStatusCode.Conflict, NodeAdminEndpoints.InvalidNodeStateType);
        Assert.Equal(HttpStatusCode.OK, (await operatorClient.PostAsync($"/v1/admin/nodes/{node.Id}/drain", null)).StatusCode);
        await (await operatorClient.PostAsync($"/v1/admin/nodes/{node.Id}/drain", null))
            .AssertProblemAsync(HttpStatusCode.Conflict, NodeAdminEndpoints.InvalidNodeStateType);
        await (await operatorClient.PostAsync("/v1/admin/nodes/99999999/drain", null)).AssertProblemAsync(HttpStatusCode.NotFound, Problems.NotFoundType);

        var audit = await api.WithDbAsync(db => Task.FromResult(db.Events.Where(e => e.Type == EventTypes.NodeDrained).ToList()));
        var data = Assert.Single(audit, e => e.Data.RootElement.GetProperty("nodeId").GetString() == node.Id).Data.RootElement;
        Assert.Equal("healthy", data.GetProperty("before").GetString());
        Assert.Equal("draining", data.GetProperty("after").GetString());
        Assert.False(string.IsNullOrEmpty(data.GetProperty("by").GetString()));

        var tenant = await api.CreateTenantAsync();
        using var tenantClient = api.ClientWithKey(tenant.ApiKey);
        await (await tenantClient.PostAsync($"/v1/admin/nodes/{node.Id}/undrain", null)).AssertProblemAsync(HttpStatusCode.Forbidden, Problems.ForbiddenType);
    }

    [Fact]
    public async Task Utilization_splits_every_step_into_allocated_free_held_back_and_unavailable()
    {
        var tenant = await TenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        using var operatorClient = api.OperatorClient();
        var start = HourAhead(40);
        (await client.ReserveAsync(new { poolId = Pool, gpuCount = 16, startAt = start, durationHours = 1, tier = "reserved" })).EnsureSuccessStatusCode();

        var from = Uri.EscapeDataString(start.AddHours(-1).ToString("O"));
        var to = Uri.EscapeDataString(start.AddHours(2).ToString("O"));
        var steps = (await operatorClient.GetFromJsonAsync<UtilizationResponse>(
            $"/v1/admin/utilization?poolId={Pool}&from={from}&to={to}&stepMinutes=60", Json.Options))!.Steps;

        var total = (int)await api.ScalarAsync<long>("SELECT count(*) * 8 FROM nodes WHERE pool_id = $1", Pool);
        var closed = (int)await api.ScalarAsync<long>("SELECT count(*) * 8 FROM nodes WHERE pool_id = $1 AND state <> 'Healthy'", Pool);
        var holdback = await api.ScalarAsync<int>("SELECT rules_holdback_gpus FROM pools WHERE id = $1", Pool);
        Assert.Equal([0, 16, 0], steps.Select(s => s.AllocatedGpus));
        Assert.All(steps, s =>
        {
            Assert.Equal(total, s.TotalGpus);
            Assert.Equal(closed, s.UnavailableGpus);
            Assert.Equal(holdback, s.HeldBackGpus);
            Assert.Equal(s.TotalGpus, s.AllocatedGpus + s.FreeGpus + s.HeldBackGpus + s.UnavailableGpus);
        });

        var tenantAsk = await client.GetAsync($"/v1/admin/utilization?poolId={Pool}");
        await tenantAsk.AssertProblemAsync(HttpStatusCode.Forbidden, Problems.ForbiddenType);
    }

    [Fact]
    public async Task A_failed_nodes_leases_move_to_spare_gpus_in_the_same_island_and_the_node_can_be_restored()
    {
        var tenant = await TenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        using var operatorClient = api.OperatorClient();
        var running = await (await client.ReserveAsync(new { poolId = Pool, gpuCount = 8, durationHours = 3 })).ReadReservationAsync();
        var node = running.Lease!.Nodes.Single();

        var failed = await operatorClient.PostAsync($"/v1/admin/nodes/{node.NodeId}/fail", null);
        Assert.Equal(NodeState.Failed, (await failed.Content.ReadFromJsonAsync<NodeResponse>(Json.Options))!.State);

        var moved = await (await client.GetAsync($"/v1/reservations/{running.Id}")).ReadReservationAsync();
        var now = DateTimeOffset.UtcNow;
        var target = Assert.Single(moved.Lease!.Nodes);
        Assert.NotEqual(node.NodeId, target.NodeId);
        Assert.Equal(8, target.GpuIndices.Count);
        Assert.Equal(node.FabricIsland, target.FabricIsland);
        const string leaseRowsFromNow = """
            SELECT count(*) FROM allocations a JOIN leases l ON l.id = a.lease_id
            WHERE l.reservation_id = $1 AND a.node_id = $2 AND upper(a.period) > $3
            """;
        Assert.Equal(0L, await api.ScalarAsync<long>(leaseRowsFromNow, Guid.Parse(running.Id), int.Parse(node.NodeId), now));
        Assert.Equal(8L, await api.ScalarAsync<long>(leaseRowsFromNow, Guid.Parse(running.Id), int.Parse(target.NodeId), now));
        Assert.Equal(0L, await api.ScalarAsync<long>(TenantClient.OverlapSql));
        var events = await client.ReadEventsUntilAsync(p => p.Items.Any(e => e.Type == EventTypes.LeaseMigrated && e.ReservationId == running.Id));
        var migration = events.Items.Single(e => e.Type == EventTypes.LeaseMigrated && e.ReservationId == running.Id).Data;
        Assert.True(migration.GetProperty("sameFabricIsland").GetBoolean());
        // Events name nodes as leases do: by the same string ids.
        Assert.Equal((node.NodeId, target.NodeId), (migration.GetProperty("fromNodeId").GetString(), migration.GetProperty("toNodeId").GetString()));
        var scheduled = events.Items.Single(e => e.Type == EventTypes.ReservationScheduled && e.ReservationId == running.Id).Data;
        Assert.Equal([node.NodeId], scheduled.GetProperty("nodeIds").EnumerateArray().Select(n => n.GetString()));

        // Nothing new lands on the failed node until it is restored.
        await (await operatorClient.PostAsync($"/v1/admin/nodes/{node.NodeId}/fail", null))
            .AssertProblemAsync(HttpStatusCode.Conflict, NodeAdminEndpoints.InvalidNodeStateType);
        Assert.Equal(HttpStatusCode.OK, (await operatorClient.PostAsync($"/v1/admin/nodes/{node.NodeId}/restore", null)).StatusCode);
        Assert.Equal("healthy", (await operatorClient.GetFromJsonAsync<System.Text.Json.JsonElement>(
            $"/v1/admin/nodes?poolId={Pool}&limit=500", Json.Options)).GetProperty("items").EnumerateArray()
            .Single(n => n.GetProperty("id").GetString() == node.NodeId).GetProperty("state").GetString());
    }

    [Fact]
    public async Task Extending_or_cancelling_a_moved_lease_leaves_its_rows_on_the_failed_node_where_the_move_cut_them()
    {
        var tenant = await TenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        using var operatorClient = api.OperatorClient();
        var running = await (await client.ReserveAsync(new { poolId = Pool, gpuCount = 8, durationHours = 3 })).ReadReservationAsync();
        var node = int.Parse(running.Lease!.Nodes.Single().NodeId);
        (await operatorClient.PostAsync($"/v1/admin/nodes/{node}/fail", null)).EnsureSuccessStatusCode();
        const string lastEnd = """
            SELECT max(upper(a.period)) FROM allocations a JOIN leases l ON l.id = a.lease_id WHERE l.reservation_id = $1 AND a.node_id = $2
            """;
        var cut = await api.ScalarAsync<DateTime>(lastEnd, Guid.Parse(running.Id), node);
        Assert.True(cut < running.EndAt.UtcDateTime);

        var extended = await (await client.PostIdempotentAsync($"/v1/reservations/{running.Id}/extend", new { additionalHours = 1 }))
            .ReadReservationAsync();
        var target = int.Parse(extended.Lease!.Nodes.Single().NodeId);
        Assert.Equal(running.EndAt.AddHours(1), extended.Lease.EndAt);
        Assert.Equal(extended.Lease.EndAt.UtcDateTime, await api.ScalarAsync<DateTime>(lastEnd, Guid.Parse(running.Id), target));
        Assert.Equal(cut, await api.ScalarAsync<DateTime>(lastEnd, Guid.Parse(running.Id), node));

        var cancelled = await (await client.PostIdempotentAsync($"/v1/reservations/{running.Id}/cancel", null)).ReadReservationAsync();
        Assert.Equal(cancelled.Lease!.EndAt.UtcDateTime, await api.ScalarAsync<DateTime>(lastEnd, Guid.Parse(running.Id), target));
        Assert.Equal(cut, await api.ScalarAsync<DateTime>(lastEnd, Guid.Parse(running.Id), node));
        (await operatorClient.PostAsync($"/v1/admin/nodes/{node}/restore", null)).EnsureSuccessStatusCode();
    }

    [Fact]
    public async Task A_lease_with_nowhere_to_go_is_marked_degraded()
    {
        var tenant = await TenantAsync();
        var firstParty = await api.CreateTenantAsync(kind: TenantKind.Internal);
        using var operatorClient = api.OperatorClient();
        (await operatorClient.PutAsJsonAsync($"/v1/admin/tenants/{firstParty.Id}/quotas/{Pool}", new { maxConcurrentGpus = 100_000 })).EnsureSuccessStatusCode();
        using var client = api.ClientWithKey(tenant.ApiKey);
        using var internalClient = api.ClientWithKey(firstParty.ApiKey);
        var start = HourAhead(50);

        // Sell every open GPU of the window, the holdback included (to first-party demand), in whole nodes.
        var first = await (await client.ReserveAsync(new { poolId = Pool, gpuCount = 8, startAt = start, durationHours = 1, tier = "reserved" }))
            .ReadReservationAsync();
        while ((await internalClient.ReserveAsync(new { poolId = Pool, gpuCount = 8, startAt = start, durationHours = 1 })).StatusCode == HttpStatusCode.Created)
        {
        }

        var node = first.Lease!.Nodes.Single().NodeId;
        Assert.Equal(HttpStatusCode.OK, (await operatorClient.PostAsync($"/v1/admin/nodes/{node}/fail", null)).StatusCode);

        var degraded = await api.ScalarAsync<long>("SELECT count(*) FROM events WHERE type = 'lease.degraded' AND reservation_id = $1", Guid.Parse(first.Id));
        Assert.Equal(1L, degraded);
        Assert.NotNull(await api.WithDbAsync(db => Task.FromResult(db.Leases.Single(l => l.ReservationId == Guid.Parse(first.Id)).DegradedSince)));
        Assert.Equal(0L, await api.ScalarAsync<long>(TenantClient.OverlapSql));
        (await operatorClient.PostAsync($"/v1/admin/nodes/{node}/restore", null)).EnsureSuccessStatusCode();
    }

    [Fact]
    public async Task Registered_nodes_join_the_pool_on_every_replica()
    {
        using var operatorClient = api.OperatorClient();
        await using var replica = new ApiFactory.Replica(api.ConnectionString);
        using var replicaClient = replica.CreateClient();
        replicaClient.DefaultRequestHeaders.Authorization = new("Bearer", ApiFactory.OperatorKey);
        var window = $"from={Uri.EscapeDataString(HourAhead(45).ToString("O"))}&to={Uri.EscapeDataString(HourAhead(45).AddHours(1).ToString("O"))}&stepMinutes=60";
        async Task<int> FreeAsync() =>
            (await replicaClient.GetFromJsonAsync<Catalog.AvailabilityResponse>($"/v1/pools/{Pool}/availability?{window}", Json.Options))!.Steps.Single().FreeGpus;
        var before = await FreeAsync();
        var island = ApiFactory.Inventory.Islands.First(i => i.PoolId == Pool).Name;

        var registered = await operatorClient.PostAsJsonAsync("/v1/admin/nodes", new { poolId = Pool, fabricIsland = island, nodeCount = 2 });

        Assert.Equal(HttpStatusCode.Created, registered.StatusCode);
        var body = (await registered.Content.ReadFromJsonAsync<RegisteredNodesResponse>(Json.Options))!;
        Assert.Equal(2, body.NodeIds.Count);
        Assert.Equal(before + 16, await FreeAsync());
        Assert.Equal(16L, await api.ScalarAsync<long>("SELECT count(*) FROM gpus WHERE node_id = ANY($1)", body.NodeIds.Select(int.Parse).ToArray()));

        var unknown = await operatorClient.PostAsJsonAsync("/v1/admin/nodes", new { poolId = Pool, fabricIsland = "nowhere", nodeCount = 2 });
        await unknown.AssertProblemAsync(HttpStatusCode.NotFound, Problems.NotFoundType);
    }
}
