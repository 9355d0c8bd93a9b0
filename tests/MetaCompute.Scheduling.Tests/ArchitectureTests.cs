using System.Reflection;
using MetaCompute.Simulation.Inventory;

namespace MetaCompute.Scheduling.Tests;

public sealed class ArchitectureTests
{
    public static TheoryData<string> PureAssemblies => new()
    {
        typeof(InventoryGenerator).Assembly.GetName().Name!,
        "MetaCompute.Scheduling",
    };

    [Theory]
    [MemberData(nameof(PureAssemblies))]
    public void The_engine_and_the_simulation_reference_no_database_or_web_framework(string assemblyName)
    {
        var assembly = Assembly.Load(assemblyName);
        var forbidden = assembly.GetReferencedAssemblies()
            .Select(a => a.Name!)
            .Where(n => n.StartsWith("Microsoft.EntityFrameworkCore", StringComparison.Ordinal)
                        || n.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal)
                        || n.StartsWith("Npgsql", StringComparison.Ordinal))
            .ToList();
        Assert.Empty(forbidden);
    }
}
