using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace MetaCompute.Api.Data;

/// <summary>Lets <c>dotnet ef migrations add</c> build the model without starting the app (and its embedded server).</summary>
public sealed class DesignTimeDbContextFactory : IDesignTimeDbContextFactory<MetaComputeDbContext>
{
    public MetaComputeDbContext CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<MetaComputeDbContext>()
            .UseNpgsql("Host=127.0.0.1;Database=metacompute_design", npgsql => npgsql.MigrationsHistoryTable("__ef_migrations_history"))
            .UseSnakeCaseNamingConvention()
            .Options);
}
