using System.Net;
using System.Net.Http.Json;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Tests.Infrastructure;

namespace MetaCompute.Api.Tests;

public sealed class AuthTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    [Fact]
    public async Task A_request_without_a_key_is_401_with_a_bearer_challenge()
    {
        using var client = api.ClientWithKey(null);
        var response = await client.GetAsync("/v1/pools");
        await response.AssertProblemAsync(HttpStatusCode.Unauthorized, Problems.UnauthenticatedType);
        Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);
    }

    [Theory]
    [InlineData("mc_not_a_real_key")]
    [InlineData("")]
    public async Task An_unknown_key_is_401(string key)
    {
        using var client = api.ClientWithKey(null);
        client.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "Bearer " + key);
        var response = await client.GetAsync("/v1/pools");
        await response.AssertProblemAsync(HttpStatusCode.Unauthorized, Problems.UnauthenticatedType);
    }

    [Fact]
    public async Task A_tenant_key_on_an_operator_route_is_403()
    {
        var tenant = await api.CreateTenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        var response = await client.GetAsync("/v1/admin/tenants");
        await response.AssertProblemAsync(HttpStatusCode.Forbidden, Problems.ForbiddenType);
        var nodes = await client.GetAsync("/v1/admin/nodes");
        await nodes.AssertProblemAsync(HttpStatusCode.Forbidden, Problems.ForbiddenType);
    }

    [Fact]
    public async Task An_operator_key_on_a_tenant_route_is_403()
    {
        using var client = api.OperatorClient();
        var response = await client.GetAsync("/v1/tenant");
        await response.AssertProblemAsync(HttpStatusCode.Forbidden, Problems.ForbiddenType);
    }

    [Fact]
    public async Task Both_kinds_of_key_read_the_catalog()
    {
        var tenant = await api.CreateTenantAsync();
        using var tenantClient = api.ClientWithKey(tenant.ApiKey);
        using var operatorClient = api.OperatorClient();
        Assert.Equal(HttpStatusCode.OK, (await tenantClient.GetAsync("/v1/pools")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await operatorClient.GetAsync("/v1/pools")).StatusCode);
    }

    [Fact]
    public async Task Another_tenants_key_answers_404_and_lists_never_show_it()
    {
        var alice = await api.CreateTenantAsync();
        var bob = await api.CreateTenantAsync();
        using var bobClient = api.ClientWithKey(bob.ApiKey);

        var response = await bobClient.GetAsync($"/v1/api-keys/{alice.KeyId}");
        await response.AssertProblemAsync(HttpStatusCode.NotFound, Problems.NotFoundType);

        var own = await bobClient.GetAsync($"/v1/api-keys/{bob.KeyId}");
        Assert.Equal(HttpStatusCode.OK, own.StatusCode);

        var list = await bobClient.GetFromJsonAsync<Page<Admin.ApiKeyResponse>>("/v1/api-keys", Json.Options);
        Assert.Equal([bob.KeyId], list!.Items.Select(k => k.Id));
    }

    [Fact]
    public async Task A_revoked_key_stops_working_at_once()
    {
        var tenant = await api.CreateTenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/tenant")).StatusCode);

        using var operatorClient = api.OperatorClient();
        var revoked = await operatorClient.PostAsync($"/v1/admin/api-keys/{tenant.KeyId}/revoke", null);
        Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);

        var response = await client.GetAsync("/v1/tenant");
        await response.AssertProblemAsync(HttpStatusCode.Unauthorized, Problems.UnauthenticatedType);
    }

    [Fact]
    public async Task Keys_are_stored_only_as_hashes()
    {
        var tenant = await api.CreateTenantAsync();
        await using var connection = await api.OpenConnectionAsync();
        await using var command = new Npgsql.NpgsqlCommand(
            "SELECT count(*) FROM api_keys WHERE key_hash = $1 AND position(convert_to($2, 'UTF8') in key_hash) = 0", connection)
        {
            Parameters = { new() { Value = ApiKeys.Hash(tenant.ApiKey) }, new() { Value = tenant.ApiKey } },
        };
        Assert.Equal(1L, await command.ExecuteScalarAsync());
    }
}
