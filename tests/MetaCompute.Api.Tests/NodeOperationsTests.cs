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
        var data = Assert.Single(audit, e => e.Data.RootElement.GetProperty("nodeId").GetInt32() == int.Parse(node.Id)).Data.RootElement;
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
}
