using System.Net;
using System.Net.Http.Json;
using MetaCompute.Api.Admin;
using MetaCompute.Api.Data;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Tests.Infrastructure;

namespace MetaCompute.Api.Tests;

public sealed class AdminTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    [Fact]
    public async Task Operator_actions_are_audited_with_who_before_and_after()
    {
        var tenant = await api.CreateTenantAsync();
        using var client = api.OperatorClient();
        (await client.PutAsJsonAsync($"/v1/admin/tenants/{tenant.Id}/quotas/us-ohio-1-h100", new { maxConcurrentGpus = 64 })).EnsureSuccessStatusCode();
        var weighted = await client.PutAsJsonAsync($"/v1/admin/tenants/{tenant.Id}/fair-share", new { weight = 3 });
        Assert.Equal(3, (await weighted.Content.ReadFromJsonAsync<TenantResponse>(Json.Options))!.FairShareWeight);
        (await client.PostAsync($"/v1/admin/api-keys/{tenant.KeyId}/revoke", null)).EnsureSuccessStatusCode();
        (await client.PostAsync($"/v1/admin/api-keys/{tenant.KeyId}/revoke", null)).EnsureSuccessStatusCode();

        // The trail shows an event once every older transaction on the server has finished: read until it is there.
        async Task<List<System.Text.Json.JsonElement>> AuditAsync(string type)
        {
            static bool Ours(System.Text.Json.JsonElement data, TestTenant t) => data.ToString().Contains(t.Id) || data.ToString().Contains(t.KeyId);
            var page = await client.ReadEventsUntilAsync(p => p.Items.Any(e => Ours(e.Data, tenant)), $"/v1/admin/events?type={type}&limit={Paging.MaxLimit}");
            return page.Items.Select(e => e.Data).Where(d => Ours(d, tenant)).ToList();
        }

        var quota = Assert.Single(await AuditAsync(EventTypes.TenantQuotaSet));
        Assert.Equal((512, 64), (quota.GetProperty("before").GetInt32(), quota.GetProperty("after").GetInt32()));
        Assert.False(string.IsNullOrEmpty(quota.GetProperty("by").GetString()));
        var weight = Assert.Single(await AuditAsync(EventTypes.TenantFairShareSet));
        Assert.Equal((1, 3), (weight.GetProperty("before").GetInt32(), weight.GetProperty("after").GetInt32()));
        Assert.Single(await AuditAsync(EventTypes.ApiKeyRevoked));
        Assert.Single(await AuditAsync(EventTypes.TenantCreated));
        Assert.Single(await AuditAsync(EventTypes.ApiKeyCreated));
    }

    [Fact]
    public async Task A_new_key_is_shown_once_then_listed_by_prefix_only()
    {
        var tenant = await api.CreateTenantAsync();
        using var client = api.OperatorClient();
        var json = await client.GetStringAsync($"/v1/admin/tenants/{tenant.Id}/api-keys");
        Assert.DoesNotContain(tenant.ApiKey, json);
        Assert.Contains(tenant.ApiKey[..11], json);
    }

    [Fact]
    public async Task A_key_for_an_unknown_tenant_is_404()
    {
        using var client = api.OperatorClient();
        var response = await client.PostAsJsonAsync($"/v1/admin/tenants/{Guid.NewGuid()}/api-keys", new { name = "x" });
        await response.AssertProblemAsync(HttpStatusCode.NotFound, Problems.NotFoundType);
    }

    [Fact]
    public async Task Tenants_page_through_with_an_opaque_token()
    {
        for (var i = 0; i < 3; i++)
        {
            await api.CreateTenantAsync();
        }

        using var client = api.OperatorClient();
        var seen = new List<string>();
        string? token = null;
        var pages = 0;
        do
        {
            var page = (await client.GetFromJsonAsync<Page<TenantResponse>>(
                $"/v1/admin/tenants?limit=2{(token is null ? "" : "&pageToken=" + token)}", Json.Options))!;
            Assert.True(page.Items.Count <= 2);
            seen.AddRange(page.Items.Select(t => t.Id));
            token = page.NextPageToken;
            pages++;
        }
        while (token is not null);

        var total = await api.WithDbAsync(db => Task.FromResult(db.Tenants.Count()));
        Assert.Equal(total, seen.Count);
        Assert.Equal(seen.Count, seen.Distinct().Count());
        Assert.True(pages >= 2);
    }

    [Fact]
    public async Task Nodes_filter_by_pool_and_state_and_page()
    {
        var fleet = ApiFactory.Inventory;
        var pool = fleet.Pools.First(p => fleet.Nodes.Any(n => n.PoolId == p.Id && n.Failed));
        using var client = api.OperatorClient();

        var failed = (await client.GetFromJsonAsync<Page<NodeResponse>>($"/v1/admin/nodes?poolId={pool.Id}&state=failed&limit=500", Json.Options))!;
        Assert.Equal(fleet.Nodes.Where(n => n.PoolId == pool.Id && n.Failed).Select(n => n.Hostname), failed.Items.Select(n => n.Hostname));
        Assert.All(failed.Items, n => Assert.Equal(NodeState.Failed, n.State));

        var hostnames = new List<string>();
        string? token = null;
        do
        {
            var page = (await client.GetFromJsonAsync<Page<NodeResponse>>(
                $"/v1/admin/nodes?poolId={pool.Id}&limit=50{(token is null ? "" : "&pageToken=" + token)}", Json.Options))!;
            hostnames.AddRange(page.Items.Select(n => n.Hostname));
            token = page.NextPageToken;
        }
        while (token is not null);

        Assert.Equal(fleet.Nodes.Where(n => n.PoolId == pool.Id).Select(n => n.Hostname), hostnames);
    }
}
