using System.Net;
using System.Net.Http.Json;
using MetaCompute.Api.Catalog;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Tests.Infrastructure;
using MetaCompute.Simulation.Inventory;

namespace MetaCompute.Api.Tests;

public sealed class CatalogTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private static readonly Inventory Fleet = ApiFactory.Inventory;

    [Fact]
    public async Task Pools_match_the_seeded_inventory()
    {
        using var client = api.OperatorClient();
        var pools = (await client.GetFromJsonAsync<Page<PoolResponse>>("/v1/pools", Json.Options))!.Items;

        Assert.Equal(Fleet.Pools.Select(p => p.Id).Order(), pools.Select(p => p.Id));
        foreach (var pool in pools)
        {
            var nodes = Fleet.Nodes.Where(n => n.PoolId == pool.Id).ToList();
            var expected = Fleet.Pools.Single(p => p.Id == pool.Id);
            Assert.Equal(nodes.Count * 8, pool.TotalGpus);
            Assert.Equal(nodes.Count(n => !n.Failed) * 8, pool.HealthyGpus);
            Assert.Equal(expected.GpuModelId, pool.GpuModel);
            Assert.Equal(expected.RegionId, pool.Region);
            Assert.Equal(expected.AllocationUnit, pool.AllocationUnit);
            Assert.Equal("USD", pool.Prices.Currency);
            Assert.True(pool.Prices.Spot < pool.Prices.Reserved && pool.Prices.Reserved < pool.Prices.OnDemand);
        }

        Assert.Equal(Fleet.GpuCount, pools.Sum(p => p.TotalGpus));
    }

    [Fact]
    public async Task A_pool_carries_an_etag_and_its_capacity()
    {
        using var client = api.OperatorClient();
        var poolId = Fleet.Pools[0].Id;
        var response = await client.GetAsync($"/v1/pools/{poolId}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.NotNull(response.Headers.ETag);
        var pool = (await response.Content.ReadFromJsonAsync<PoolResponse>(Json.Options))!;
        Assert.Equal(Fleet.Nodes.Count(n => n.PoolId == poolId) * 8, pool.TotalGpus);
    }

    [Fact]
    public async Task Regions_list_their_sites()
    {
        using var client = api.OperatorClient();
        var regions = (await client.GetFromJsonAsync<Page<RegionResponse>>("/v1/regions", Json.Options))!.Items;
        Assert.Equal(Fleet.Regions.Select(r => r.Id).Order(), regions.Select(r => r.Id));
        foreach (var region in regions)
        {
            Assert.Equal(Fleet.Sites.Where(s => s.RegionId == region.Id).Select(s => s.Name).Order(), region.Sites.Select(s => s.Name));
        }
    }

    [Fact]
    public async Task Gpu_models_carry_exact_list_prices()
    {
        using var client = api.OperatorClient();
        var models = (await client.GetFromJsonAsync<Page<GpuModelResponse>>("/v1/gpu-models", Json.Options))!.Items;
        Assert.Equal(GpuModels.All.Select(m => m.Id).Order(), models.Select(m => m.Id));
        Assert.Equal(GpuModels.H100.ListPricePerGpuHour, models.Single(m => m.Id == GpuModels.H100.Id).ListPricePerGpuHour);
    }

    [Fact]
    public async Task Enums_are_snake_case_strings_on_the_wire()
    {
        using var client = api.OperatorClient();
        var json = await client.GetStringAsync($"/v1/pools/{Fleet.Pools[0].Id}");
        Assert.Contains("\"allocationUnit\":\"gpu\"", json);
    }

    [Fact]
    public async Task Availability_of_an_empty_pool_is_its_sellable_capacity_in_every_step()
    {
        using var client = api.OperatorClient();
        var pool = Fleet.Pools[0];
        var response = (await client.GetFromJsonAsync<AvailabilityResponse>($"/v1/pools/{pool.Id}/availability?stepMinutes=120", Json.Options))!;
        var healthy = Fleet.Nodes.Count(n => n.PoolId == pool.Id && !n.Failed) * 8;
        var total = Fleet.Nodes.Count(n => n.PoolId == pool.Id) * 8;
        var holdback = (await client.GetFromJsonAsync<PoolResponse>($"/v1/pools/{pool.Id}", Json.Options))!.Rules.HoldbackGpus;
        Assert.Equal(12, response.Steps.Count);
        Assert.All(response.Steps, s => Assert.Equal((healthy - holdback, healthy, total), (s.FreeGpus, s.HealthyGpus, s.TotalGpus)));
        // The same names mean the same on the pool.
        var poolView = (await client.GetFromJsonAsync<PoolResponse>($"/v1/pools/{pool.Id}", Json.Options))!;
        Assert.Equal((poolView.HealthyGpus, poolView.TotalGpus), (response.Steps[0].HealthyGpus, response.Steps[0].TotalGpus));
    }

    [Fact]
    public async Task Offerings_on_an_empty_pool_are_as_many_distinct_windows_as_asked()
    {
        using var client = api.OperatorClient();
        var earliest = Uri.EscapeDataString(DateTimeOffset.UtcNow.AddDays(1).ToString("O"));
        var offerings = (await client.GetFromJsonAsync<Page<Offerings.OfferingResponse>>(
            $"/v1/offerings?poolId={Fleet.Pools[0].Id}&gpuCount=8&durationHours=4&earliestStart={earliest}&limit=3", Json.Options))!.Items;
        Assert.Equal(3, offerings.Select(o => o.StartAt).Distinct().Count());
        Assert.Equal(offerings.Select(o => o.StartAt).Order(), offerings.Select(o => o.StartAt));
    }

    [Fact]
    public async Task Availability_refuses_too_many_steps_and_unknown_pools()
    {
        using var client = api.OperatorClient();
        var tooMany = await client.GetAsync($"/v1/pools/{Fleet.Pools[0].Id}/availability?stepMinutes=1");
        var problem = await tooMany.AssertProblemAsync(HttpStatusCode.BadRequest, Problems.ValidationFailedType);
        Assert.True(problem.GetProperty("errors").TryGetProperty("stepMinutes", out _));
        await (await client.GetAsync("/v1/pools/nowhere/availability")).AssertProblemAsync(HttpStatusCode.NotFound, Problems.NotFoundType);
    }
}
